//go:build tools

// Package tools pins the Flux source-controller the GitOps end-to-end tests run.
package tools

import (
	_ "github.com/fluxcd/source-controller"
)
