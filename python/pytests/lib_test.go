package pytests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// python is Debian's interpreter with python3-torch and python3-numpy
// (python3 on PATH may be another one without them).
const python = "/usr/bin/python3"

var (
	libOnce sync.Once
	libPath string
	libErr  error
	libDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if libDir != "" {
		os.RemoveAll(libDir)
	}
	os.Exit(code)
}

// pythonDir is python/ (the parent of this package's directory).
func pythonDir(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Dir(wd)
}

// requirePython skips unless /usr/bin/python3 imports every module named.
func requirePython(tb testing.TB, modules ...string) {
	tb.Helper()
	if _, err := os.Stat(python); err != nil {
		tb.Skipf("%s: %v (apt-get install python3 python3-numpy python3-torch)", python, err)
	}
	for _, m := range modules {
		if out, err := exec.Command(python, "-c", "import "+m).CombinedOutput(); err != nil {
			tb.Skipf("%s cannot import %s (apt-get install python3-%s): %v: %s", python, m, m, err, lastLines(out, 3))
		}
	}
}

// buildLib builds libonet.so once per test binary (go build
// -buildmode=c-shared ./capi, as `make libonet` does) and returns its path.
func buildLib(tb testing.TB) string {
	tb.Helper()
	libOnce.Do(func() {
		if _, err := exec.LookPath("gcc"); err != nil {
			libErr = fmt.Errorf("gcc not found (cgo needs it for -buildmode=c-shared): %w", err)
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil && os.Getenv("GOROOT") != "" {
			goBin, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
		}
		if err != nil {
			libErr = fmt.Errorf("go not found on PATH (needed to build libonet.so): %w", err)
			return
		}
		libDir, libErr = os.MkdirTemp("", "onet-pytests-")
		if libErr != nil {
			return
		}
		p := filepath.Join(libDir, "libonet.so")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildmode=c-shared", "-o", p,
			"github.com/opennetworks/onetdp/capi")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			libErr = fmt.Errorf("go build -buildmode=c-shared ./capi: %w: %s", err, lastLines(out, 20))
			return
		}
		libPath = p
	})
	if libErr != nil {
		if strings.Contains(libErr.Error(), "gcc not found") || strings.Contains(libErr.Error(), "go not found") {
			tb.Skip(libErr)
		}
		tb.Fatal(libErr)
	}
	return libPath
}

// pyEnv is the environment of a Python process: the package from this
// checkout, the freshly built library, one thread per op.
func pyEnv(tb testing.TB, extra ...string) []string {
	env := append(os.Environ(), "PYTHONPATH="+pythonDir(tb), "ONET_LIB="+buildLib(tb), "ONET_REQUIRE_LIB=1",
		"OMP_NUM_THREADS=1", "PYTHONUNBUFFERED=1", "PYTHONFAULTHANDLER=1")
	return append(env, extra...)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestUnit runs python/tests' unittest suite (one rank on 127.0.0.1: no
// lab, no root) against the library built here.
func TestUnit(t *testing.T) {
	requirePython(t, "numpy")
	lib := buildLib(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "discover", "-v", "-s", "tests")
	cmd.Dir = pythonDir(t)
	cmd.Env = pyEnv(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("ONET_LIB=%s\n%s", lib, lastLines(out.Bytes(), 40))
	if err != nil {
		t.Fatalf("unittest: %v", err)
	}
	s := out.String()
	if !strings.Contains(s, "\nOK") {
		t.Fatalf("unittest did not report OK")
	}
	// The single-rank tests must have run, not skipped for want of the library.
	for _, name := range []string{"test_numpy_ops", "test_go_panic_is_an_exception", "test_go_errors"} {
		if !strings.Contains(s, name+" (test_unit.SingleRank."+name+") ... ok") {
			t.Errorf("%s did not run and pass", name)
		}
	}
}
