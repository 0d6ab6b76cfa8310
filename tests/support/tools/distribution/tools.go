//go:build tools

// Package tools pins the commands the test harness builds.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
