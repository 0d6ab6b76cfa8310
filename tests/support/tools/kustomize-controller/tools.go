//go:build tools

// Package tools pins the Flux kustomize-controller the GitOps end-to-end tests run.
package tools

import (
	_ "github.com/fluxcd/kustomize-controller"
)
