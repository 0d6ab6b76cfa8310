//! The control plane's certificates and keys, generated fresh for each control plane: one CA, the
//! apiserver's serving certificate, one client certificate per identity, and the key pair that
//! signs service-account tokens. All keys are ECDSA P-256 (rcgen's default), which every
//! Kubernetes component accepts.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, PEM-encoded.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    /// Signs and verifies service-account tokens (private key PEM, public key PEM).
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Pki {
    /// A fresh CA (and service-account key pair).
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "testbed-kubernetes-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let sa = KeyPair::generate().unwrap();
        Pki {
            ca,
            service_account_key_pem: sa.serialize_pem(),
            service_account_pub_pem: sa.public_key_pem(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The apiserver's serving certificate: valid for loopback and the in-cluster names.
    pub fn serving(&self, service_ip: &str) -> Pair {
        let names = [
            "127.0.0.1",
            "localhost",
            service_ip,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        let mut params = CertificateParams::new(names.map(String::from).to_vec()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate: the apiserver maps CN to the user name and O to its groups.
    pub fn client(&self, user: &str, group: Option<&str>) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(group) = group {
            params
                .distinguished_name
                .push(DnType::OrganizationName, group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Pair {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
