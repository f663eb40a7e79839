//go:build !linux

package httpsession

import "os/exec"

// srvDieWithParent: only Linux can tie a child's life to its parent's; the
// test's Cleanup stops the server elsewhere.
func srvDieWithParent(*exec.Cmd) {}
