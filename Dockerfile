# The resource type's image: one static binary (check, in and out, chosen by the name it runs as;
# /opt/resource/{check,in,out} are symbolic links to it) and the CA certificates, nothing else.
#
#   docker build -t ghcr.io/<owner>/image-rollout-resource:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Multi-arch works without a cross toolchain: each platform's builder compiles for its own
# architecture (`docker buildx build --platform linux/amd64,linux/arm64 …`).
# tests/image.rs builds the same binary the same way and checks it is static, small and runs.

ARG RUST_VERSION=1.95
# The image the final stage takes the binaries and CA certificates from: the builder below, or
# (tests/image.rs, where the builder's base image cannot be pulled) an image holding binaries built
# the same way, at the same paths.
ARG BINARIES=builder

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
# musl-gcc compiles ring's C and assembly for the musl target; everything else is Rust (rustls, no
# OpenSSL), so the binaries need no libc at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest names tests/support (a workspace member) and the benches, so cargo needs them to
# load it; only the image's binary is built.
COPY Cargo.toml Cargo.lock build.rs ./
# The binary's link layout and settings (build.rs passes them to the linker for musl targets).
COPY link link
COPY bin bin
COPY src src
COPY benches benches
COPY tests/support tests/support
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked --target "$target" --bin resource \
 && mkdir -p /out/opt/resource \
 && mkdir -m 1777 /out/tmp \
 && cp "target/$target/release/resource" /out/opt/resource/ \
 && for step in check in out; do ln -s resource "/out/opt/resource/$step"; done

FROM ${BINARIES} AS binaries

FROM scratch
# Cargo.toml's version, which the binaries report on their first stderr line; release.yml refuses
# a tag that differs from it.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/werdnum/image-rollout-resource
LABEL org.opencontainers.image.title="image-rollout-resource" \
      org.opencontainers.image.description="Concourse resource type: follow an OCI image tag by digest and roll Kubernetes workloads to it" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
# rustls reads the system roots from this file (SSL_CERT_FILE makes the lookup explicit).
COPY --from=binaries /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# /opt/resource, and an empty /tmp (mode 1777, kept by COPY for what is inside the source): a check
# remembers there how the registry asked to be authenticated, for the next checks of the resource,
# which Concourse runs in the same container (src/registry/remembered.rs).
COPY --from=binaries /out/ /
# Root *inside* the container, on purpose. Concourse runs a resource as its image's user and mounts
# the step's directories owned by root (concourse/concourse#403), so as any other user `in` could
# not write its `repository`/`digest` files; Concourse's own resource images set `USER root` for
# that reason. The container is unprivileged, so its root is mapped to an unprivileged user on the
# worker by Concourse's user namespace. Numeric, as scratch has no /etc/passwd.
USER 0:0
# For the GitHub Action (action.yml: `args: [action]`); Concourse ignores it and runs
# /opt/resource/check, in and out by path.
ENTRYPOINT ["/opt/resource/resource"]
