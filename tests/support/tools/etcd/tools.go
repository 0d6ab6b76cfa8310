//go:build tools

// Package tools pins the commands the test harness builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
