package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// runCmd runs the command c (newLabCmd(), newBenchCmd(), ...) with args
// in-process, logs what it wrote to stderr and returns its stdout.
func runCmd(t *testing.T, c *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&errOut)
	c.SetArgs(args)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.Execute()
	if errOut.Len() > 0 {
		t.Logf("stderr:\n%s", errOut.String())
	}
	return out.String(), err
}

// runLab runs `onetdp lab <args>` in-process and returns its stdout.
func runLab(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, newLabCmd(), args...)
}

func TestLabCLIUpStatusDown(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	name := testutil.UniqueName("t")
	t.Cleanup(func() { lab.Down(name) })
	subnet := labtest.RandomSubnet()
	out, err := runLab(t, "up", "--name", name, "--hosts", "3", "--subnet", subnet.String(), "--ipv6", "--mtu", "2000",
		"--bottleneck-host", "1", "--bottleneck-rate", "500mbit", "--bottleneck-burst", "64k")
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, want := range []string{"HOST", "h2", name + "-h0", "eth0", "2000", "bottleneck into h1: tbf rate 500mbit burst 64k"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q:\n%s", want, out)
		}
	}

	out, err = runLab(t, "status", "--name", name, "--json")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var v labJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if v.Name != name || !v.Switched || len(v.Hosts) != 3 {
		t.Fatalf("status %+v", v)
	}
	for i, h := range v.Hosts {
		addr := subnet.Addr().As4()
		addr[3] = byte(i + 1)
		if h.IPv4 != fmt.Sprintf("%d.%d.%d.%d/24", addr[0], addr[1], addr[2], addr[3]) || h.MTU != 2000 ||
			h.Netns != lab.HostNetns(name, i) || !strings.HasSuffix(h.IPv6, fmt.Sprintf("::%d/64", i+1)) || len(h.MAC) != 17 {
			t.Errorf("host %d: %+v", i, h)
		}
	}
	if b := v.Bottleneck; b == nil || b.Host != 1 || b.RateBps != 500e6 {
		t.Errorf("bottleneck %+v, want host 1 rate 500e6", b)
	}

	out, err = runLab(t, "list", "--json")
	var names []string
	if err != nil || json.Unmarshal([]byte(out), &names) != nil || !strings.Contains(out, `"`+name+`"`) {
		t.Errorf("list: %v %s", err, out)
	}

	if _, err := runLab(t, "down", "--name", name); err != nil {
		t.Fatalf("down: %v", err)
	}
	if _, err := runLab(t, "status", "--name", name); !errors.Is(err, lab.ErrNotFound) {
		t.Errorf("status after down: %v, want ErrNotFound", err)
	}
}

func TestLabCLIBadFlags(t *testing.T) {
	cases := map[string][]string{
		"rate without host": {"up", "--bottleneck-rate", "1gbit"},
		"host without rate": {"up", "--bottleneck-host", "1"},
		"bad rate":          {"up", "--bottleneck-host", "1", "--bottleneck-rate", "fast"},
		"bad burst":         {"up", "--bottleneck-host", "1", "--bottleneck-rate", "1g", "--bottleneck-burst", "big"},
		"bad subnet":        {"up", "--subnet", "198.18.0.0"},
		"outside subnet":    {"up", "--name", "tbad", "--subnet", "10.0.0.0/24"},
		"bad mtu":           {"up", "--name", "tbad", "--mtu", "10"},
		"bad name":          {"status", "--name", "Bad_Name"},
		"exec no command":   {"exec", "h0", "--"},
		"stray arg":         {"down", "extra"},
	}
	for what, args := range cases {
		out, err := runLab(t, args...)
		if err == nil {
			t.Errorf("%s: no error (output %q)", what, out)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", what, err)
		}
	}
}

func TestLabCLIHelpHasExamples(t *testing.T) {
	root := newLabCmd()
	for _, c := range append(root.Commands(), root) {
		if c.Example == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
	}
}

// TestLabCLIExecHelper is not a test: TestLabCLIExec runs the test binary
// with ONETDP_LAB_EXEC set to make this process `onetdp lab exec`.
func TestLabCLIExecHelper(t *testing.T) {
	args := os.Getenv("ONETDP_LAB_EXEC")
	if args == "" {
		t.Skip("helper process for TestLabCLIExec")
	}
	_, err := runLab(t, strings.Split(args, "\x1f")...)
	fmt.Fprintln(os.Stderr, "onetdp:", err)
	os.Exit(1)
}

func TestLabCLIExec(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	run := func(args ...string) (string, int) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLabCLIExecHelper$")
		cmd.Env = append(os.Environ(), "ONETDP_LAB_EXEC="+strings.Join(args, "\x1f"))
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run helper: %v", err)
		}
		return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
	}
	var st unix.Stat_t
	if err := unix.Stat(l.Hosts[1].Netns, &st); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"h1", "1", lab.HostNetns(l.Name, 1)} {
		out, code := run("exec", "--name", l.Name, host, "--", "sh", "-c", "readlink /proc/self/ns/net")
		if want := fmt.Sprintf("net:[%d]", st.Ino); out != want || code != 0 {
			t.Errorf("exec in %s: %q exit %d, want %q exit 0", host, out, code, want)
		}
	}
	if _, code := run("exec", "--name", l.Name, "h0", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit status %d, want 7", code)
	}
	if _, code := run("exec", "--name", l.Name, "h5", "--", "true"); code != 1 {
		t.Errorf("exec in missing host: exit %d, want 1", code)
	}
}
