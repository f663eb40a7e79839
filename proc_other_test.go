//go:build !linux

package httpsession

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; the
// test's Cleanup stops the server elsewhere.
func dieWithParent(*exec.Cmd) {}
