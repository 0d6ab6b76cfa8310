//go:build tools

// Package tools pins the commands the test harness builds.
package tools

import (
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
