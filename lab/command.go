package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"

	"github.com/opennetworks/onetdp/internal/nsenter"
)

// Cmd is an exec.Cmd that starts inside a host's network namespace. Set up
// the embedded Cmd (Stdin, Stdout, Env, ...) as usual, then call Start, Run,
// Output or CombinedOutput on Cmd itself, never on the embedded exec.Cmd:
// those would start the process in the caller's namespace. Wait may be
// called on either. Owned by the goroutine that created it, like exec.Cmd.
type Cmd struct {
	*exec.Cmd
	host *Host
}

// Command returns a command that, once started, runs in the host's network
// namespace (the mount namespace is the caller's: /sys still shows the root
// namespace's devices). ctx kills the process as with exec.CommandContext.
func (h *Host) Command(ctx context.Context, name string, args ...string) *Cmd {
	return &Cmd{Cmd: exec.CommandContext(ctx, name, args...), host: h}
}

// Start starts the process from an OS thread switched into the host's
// namespace: a forked child inherits the namespaces of the forking thread.
func (c *Cmd) Start() error {
	return nsenter.DoPath(c.host.Netns, c.Cmd.Start)
}

// Run starts the command in the host's namespace and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output. When Stderr is
// unset, an *exec.ExitError carries the start of standard error.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("exec: Stdout already set")
	}
	var stdout, stderr bytes.Buffer
	c.Stdout = &stdout
	captureErr := c.Stderr == nil
	if captureErr {
		c.Stderr = &stderr
	}
	err := c.Run()
	var ee *exec.ExitError
	if captureErr && errors.As(err, &ee) {
		b := stderr.Bytes()
		if len(b) > 32<<10 {
			b = b[:32<<10]
		}
		ee.Stderr = b
	}
	return stdout.Bytes(), err
}

// CombinedOutput runs the command and returns standard output and standard
// error together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errors.New("exec: Stdout or Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	c.Stderr = &b
	err := c.Run()
	return b.Bytes(), err
}

// Job is the outcome of RunJob: every host's standard output and error,
// and how each process ended (nil: exit status 0).
type Job struct {
	Stdout, Stderr []bytes.Buffer
	Errs           []error
}

// RunJob runs one process on each of hosts at once, as the ranks of a job
// (mk builds host i's command with the job's context, leaving Stdout and
// Stderr unset), and waits for all of them. The first process to fail
// ends the others, which would otherwise wait for it. The error is for a
// process that could not start; how the others ended is in Job.Errs.
func RunJob(ctx context.Context, hosts []*Host, mk func(ctx context.Context, i int, h *Host) *Cmd) (*Job, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(hosts)
	j := &Job{Stdout: make([]bytes.Buffer, n), Stderr: make([]bytes.Buffer, n), Errs: make([]error, n)}
	var wg sync.WaitGroup
	for i, h := range hosts {
		cmd := mk(ctx, i, h)
		cmd.Stdout, cmd.Stderr = &j.Stdout[i], &j.Stderr[i]
		if err := cmd.Start(); err != nil {
			cancel()
			wg.Wait()
			return j, fmt.Errorf("start rank %d on %s: %w", i, h.Name, err)
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				j.Errs[i] = err
				cancel()
			}
		})
	}
	wg.Wait()
	return j, nil
}
