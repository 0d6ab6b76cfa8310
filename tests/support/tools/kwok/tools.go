//go:build tools

// Package tools pins the commands the test harness builds.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
