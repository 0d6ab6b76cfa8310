// A registry that serves the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>), for
// tests/verify.rs: go-containerregistry's registry (the library crane and many registries' tests
// use) with its referrers support on. Debian's Distribution 2.8 and Distribution v3.1.2 answer that
// API 404, and zot is refused by the module proxy (docs/testing.md, "verify").
//
// Usage: referrers-registry 127.0.0.1:PORT (in memory; stops with the process).
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: referrers-registry HOST:PORT")
	}
	log.Fatal(http.ListenAndServe(os.Args[1], registry.New(registry.WithReferrersSupport(true))))
}
