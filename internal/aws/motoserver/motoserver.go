// Package motoserver starts and stops moto_server, the AWS emulator that the
// integration tests (internal/aws/awstest) and `importctl dev` run the
// handlers against, on a free loopback port.
//
// The server runs with two fixes (see Patch) whenever the Python that has
// moto is at hand: without them moto's TransactWriteItems makes imports
// quadratic in their rows (decision 8 has the figures).
//
// The server runs in a process group of its own, so a Ctrl-C meant for its
// parent does not stop it before the parent has finished with it; Stop kills
// the group, and the kernel kills the server if its parent dies first
// (Pdeathsig), so no server outlives the process that started it.
package motoserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by Start when moto_server is not on PATH.
var ErrNotInstalled = errors.New("moto_server is not installed (`make deps` installs it: pip install 'moto[server]')")

// Server is a running moto_server.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
	// Patched: started with Patch (else plain moto_server, slow on imports).
	Patched bool

	cmd      *exec.Cmd
	out      *tail
	exited   chan struct{}
	stopOnce sync.Once
}

// Pid is the server's process id (also its process group id).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Start starts a moto_server on a free loopback port and waits until it
// answers. It tries three ports (another process may take a free port
// between the choice and moto's bind).
func Start() (*Server, error) { return start(true) }

// start starts moto_server, with Patch when patch is set and a Python to
// run it is found.
func start(patch bool) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	argv, patched := []string{bin}, false
	if py := patchPython(bin); patch && py != "" {
		argv, patched = []string{py, "-c", Patch}, true
	}
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		out := &tail{n: 4096}
		cmd := exec.Command(argv[0], append(argv[1:], "-H", "127.0.0.1", "-p", fmt.Sprint(port))...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
		s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Patched: patched, cmd: cmd, out: out, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(s.exited) }()
		if err := waitReady(s.Endpoint, 30*time.Second, s.exited); err != nil {
			s.Stop()
			last = fmt.Errorf("moto_server: %w; its output: %s", err, strings.TrimSpace(out.String()))
			continue
		}
		return s, nil
	}
	return nil, last
}

// Stop kills the server's process group and waits for the server to exit.
// It can be called more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.kill()
		<-s.exited
	})
}

// Exited is closed when the server process has exited (stopped, or died).
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Output is the last few KiB the server wrote (its log, an error).
func (s *Server) Output() string { return s.out.String() }

func (s *Server) kill() {
	select {
	case <-s.exited: // reaped: its pid may name another process by now
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// patchPython returns a Python interpreter that can import moto's server and
// DynamoDB models, to run Patch with: the interpreter of moto_server's own
// script (a pip-installed entry point names it), else python3. "" when
// neither has moto (a pipx install, say): moto_server then runs as it is.
func patchPython(motoServer string) string {
	var candidates []string
	if py := shebangPython(motoServer); py != "" {
		candidates = append(candidates, py)
	}
	if py, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, py)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import moto.server, moto.dynamodb.models").Run() == nil {
			return py
		}
	}
	return ""
}

// shebangPython is the interpreter on the #! line of script when it is a
// Python ("" otherwise: a binary, a shell shim).
func shebangPython(script string) string {
	f, err := os.Open(script)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return ""
	}
	py := fields[0]
	if filepath.Base(py) == "env" && len(fields) > 1 {
		py = fields[1]
	}
	if !strings.HasPrefix(filepath.Base(py), "python") {
		return ""
	}
	return py
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls ep until it answers, the server exits, or within passes.
func waitReady(ep string, within time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(ep + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before it answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready at %s after %s", ep, within)
}

// tail keeps the last n bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	n   int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Patch runs moto_server with two fixes that make imports cost time linear
// in their rows; what every request does and returns is otherwise moto's
// own (TestPatchRollsBackLikeMoto compares the two).
//
//   - TransactWriteItems keeps a copy of each table it touches to roll back a
//     cancelled transaction: moto deep-copies the whole table, once per ITEM
//     of the transaction, so every transaction costs time and memory in the
//     size of its tables and an import is quadratic in its rows (moto at
//     gigabytes within a few thousand rows). The patch keeps an undo log
//     instead: before the transaction it copies the items the transaction
//     names (their state, or their absence), and when the transaction fails
//     it puts those back; the tables are no longer copied (moto's own
//     rollback then restores each table to itself). Not covered: DynamoDB
//     Streams records of a rolled-back transaction stay (the stack's tables
//     have no streams).
//   - An item is checked against the 400 KB limit once, not again as each
//     attribute is added (moto's LimitedSizeDict sums the sizes of all
//     attributes at every addition: a third of moto's time on an import).
const Patch = `
import copy, sys
import moto.dynamodb.models as m
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.models.table import Table
from moto.server import main


class _copy:
    """copy for moto.dynamodb.models, whose only deepcopy of a Table is the
    rollback copy of transact_write_items: a Table is not copied (the undo
    log below restores its items)."""

    @staticmethod
    def deepcopy(x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)


ITEM_SIZE_LIMIT = 405000  # moto's LimitedSizeDict

m.copy = _copy
_transact = m.DynamoDBBackend.transact_write_items


def _key(table, op_type, op):
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    rk = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        rk = DynamoType(attrs[table.range_key_attr])
    return DynamoType(attrs[table.hash_key_attr]), rk


def transact_write_items(self, transact_items):
    undo = {}
    for item in transact_items:
        try:
            op_type, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName"))
            k = _key(table, op_type, op) if table is not None else None
            if k is not None and (id(table), k) not in undo:
                undo[(id(table), k)] = (table, k, copy.deepcopy(table.get_item(*k)))
        except Exception:
            continue  # a malformed operation: the transaction reports it
    try:
        return _transact(self, transact_items)
    except BaseException:
        for table, (hk, rk), old in undo.values():
            if rk is None:
                if old is None:
                    table.items.pop(hk, None)
                else:
                    table.items[hk] = old
            elif old is not None:
                table.items[hk][rk] = old
            elif hk in table.items:
                table.items[hk].pop(rk, None)
                if not table.items[hk]:
                    del table.items[hk]
        raise


m.DynamoDBBackend.transact_write_items = transact_write_items

_item_init = Item.__init__


def item_init(self, hash_key, range_key, attrs):
    """Item, with its size checked once: moto's LimitedSizeDict sums the
    sizes of all attributes again as each one is added (quadratic in the
    attributes). The sizes are not negative, so the whole item passes the
    limit exactly when every prefix does; the error is moto's."""
    _item_init(self, hash_key, range_key, {})
    values = {k: DynamoType(v) for k, v in attrs.items()}
    if sum(bytesize(k) + v.size() for k, v in values.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    dict.update(self.attrs, values)


Item.__init__ = item_init
main(sys.argv[1:])
`
