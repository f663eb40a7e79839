package httpsession

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel SIGKILL a test's private server when the
// test binary dies, so a killed or timed-out `go test` leaves no Redis or
// memcached behind holding a port.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
