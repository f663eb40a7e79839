//go:build linux

package sqltest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// server is a database server process of the test's own, which it kills
// and restarts on the same data directory and port.
type server struct {
	t    *testing.T
	dir  string
	port int
	cred *syscall.Credential // nil: run as ourselves
	args func() (string, []string)
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// credential returns the user the servers run as: HTTPSESSION_DB_USER when
// we are root (PostgreSQL refuses to run as root), else ourselves.
func credential(t *testing.T) *syscall.Credential {
	if os.Getuid() != 0 {
		return nil
	}
	name := needEnv(t, "HTTPSESSION_DB_USER")
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// newServer makes a data directory the server's user owns.
func newServer(t *testing.T) *server {
	s := &server{t: t, cred: credential(t), port: freePort(t)}
	dir, err := os.MkdirTemp("", "httpsession-sqltest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	s.dir = dir
	return s
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs a setup command as the server's user.
func (s *server) run(name string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// start starts the server in a process group of its own and waits until
// ready answers nil.
func (s *server) start(ready func() error) {
	s.t.Helper()
	name, args := s.args()
	s.out.Reset()
	s.cmd = exec.Command(name, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() { s.killCmd(cmd) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not start: %v\n%s", name, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill kills the server and every process of its group at once, as a
// crash would.
func (s *server) kill() { s.killCmd(s.cmd) }

func (s *server) killCmd(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// startPostgres starts a PostgreSQL server of the test's own and returns
// it and its DSN.
func startPostgres(t *testing.T) (*server, string) {
	bin := needEnv(t, "HTTPSESSION_POSTGRES_BIN")
	s := newServer(t)
	data := filepath.Join(s.dir, "data")
	s.run(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	s.args = func() (string, []string) {
		return filepath.Join(bin, "postgres"), []string{"-D", data, "-p", strconv.Itoa(s.port), "-k", s.dir,
			"-c", "listen_addresses=127.0.0.1"}
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
	return s, dsn
}

// startMariaDB starts a MariaDB server of the test's own and returns it
// and its DSN.
func startMariaDB(t *testing.T) (*server, string) {
	needEnv(t, "HTTPSESSION_MYSQL_DSN") // the server binaries come with it
	s := newServer(t)
	data := filepath.Join(s.dir, "data")
	s.run("mariadb-install-db", "--no-defaults", "--datadir="+data, "--skip-test-db", "--auth-root-authentication-method=normal")
	s.args = func() (string, []string) {
		return "mariadbd", []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(s.dir, "sock"),
			"--port=" + strconv.Itoa(s.port), "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-log-bin",
			"--innodb-buffer-pool-size=32M", "--log-error=" + filepath.Join(s.dir, "error.log")}
	}
	return s, fmt.Sprintf("root@tcp(127.0.0.1:%d)/mysql?timeout=2s", s.port)
}

// TestDatabaseKilled: the database is killed while sessions are in use.
// Requests that need the session get 503 and no cookie, requests that do
// not are served, and nothing is lost: once the database is back, the same
// cookie loads the same session, which takes changes again.
func TestDatabaseKilled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		d     database
		start func(t *testing.T) (*server, string)
	}{
		{"postgres", databases()[1], startPostgres},
		{"mariadb", databases()[2], startMariaDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, dsn := tc.start(t)
			probe, err := sql.Open(tc.d.driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer probe.Close()
			ready := func() error {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				return probe.PingContext(ctx)
			}
			srv.start(ready)
			db := openDSN(t, tc.d, dsn)
			b := httpsession.NewSQLBackend(db.DB, tc.d.dialect)
			if err := b.CreateTable(t.Context()); err != nil {
				t.Fatal(err)
			}
			a := newApp(t, httpsession.NewServerStore(b, httpsession.WithTimeout(3*time.Second)))
			cookie := a.login(t)
			a.must(t, "/set?k=x&v=1", cookie)
			other := a.login(t)

			srv.kill()
			for _, path := range []string{"/get", "/set?k=x&v=lost", "/logout", "/login"} {
				c := cookie
				if path == "/login" {
					c = ""
				}
				start := time.Now()
				r := a.get(t, path, c)
				if r.status != http.StatusServiceUnavailable || r.cookie != nil {
					t.Errorf("%s with the database down: status %d, cookie %v; want 503 and no cookie", path, r.status, r.cookie)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s with the database down took %v", path, d)
				}
			}
			if r := a.get(t, "/untouched", cookie); r.status != http.StatusOK {
				t.Errorf("untouched with the database down: status %d", r.status)
			}

			srv.start(ready)
			if r := a.must(t, "/get", cookie); r.body != "user=alice;x=1;" {
				t.Fatalf("after the restart the cookie loads %q, want user=alice;x=1;", r.body)
			}
			if r := a.must(t, "/get", other); r.body != "user=alice;" {
				t.Fatalf("after the restart the other cookie loads %q", r.body)
			}
			a.must(t, "/set?k=x&v=2", cookie)
			if r := a.must(t, "/get", cookie); r.body != "user=alice;x=2;" {
				t.Fatalf("after a change: %q", r.body)
			}
		})
	}
}
