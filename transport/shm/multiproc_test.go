package shm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
	"github.com/opennetworks/onetdp/transport/shm"
)

// The multi-process tests run the test binary again as each rank, with
// the scenario and rank in these variables; TestHelperProcess is the
// ranks' entry point.
const (
	envScenario = "ONET_SHM_TEST_SCENARIO"
	envRank     = "ONET_SHM_TEST_RANK"
	envSize     = "ONET_SHM_TEST_SIZE"
	envStore    = "ONET_SHM_TEST_STORE"
	envDir      = "ONET_SHM_TEST_DIR"
)

// exchangeSizes are the message sizes every pair of ranks exchanges.
var exchangeSizes = []int{0, 1, 8, 4095, 4096, 65537, 1 << 20, 4<<20 + 3, 16 << 20}

func payload(src, dst, i, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(src<<16|dst<<8|i), 99))
	b := make([]byte, n)
	for j := 0; j < n; j += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && j+k < n; k++ {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// TestHelperProcess is one rank of a multi-process test (it does nothing
// when the test binary runs normally).
func TestHelperProcess(t *testing.T) {
	scenario := os.Getenv(envScenario)
	if scenario == "" {
		t.Skip("entry point of the rank processes the multi-process tests start")
	}
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	if err := runRank(scenario, rank, size); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runRank(scenario string, rank, size int) error {
	store, err := rendezvous.OpenFileStore(os.Getenv(envStore))
	if err != nil {
		return err
	}
	defer store.Close()
	local := make([]int, size)
	for i := range local {
		local[i] = i
	}
	o := shm.Options{Store: store, Rank: rank, Size: size, Local: local, Dir: os.Getenv(envDir), Timeout: 30 * time.Second}
	if scenario == "kill" {
		o.PeerTimeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr, err := shm.New(ctx, o)
	if err != nil {
		return err
	}
	defer tr.Close()
	switch scenario {
	case "exchange":
		return exchange(ctx, tr, rank, size)
	case "kill":
		if rank == 1 { // the victim: say it is up, then wait to be killed
			if err := store.Set(ctx, "victim-up", []byte{1}); err != nil {
				return err
			}
			time.Sleep(time.Minute)
			return errors.New("never killed")
		}
		r, err := tr.Irecv(1, 1, make([]byte, 8))
		if err != nil {
			return err
		}
		if err := store.Set(ctx, "posted", []byte{1}); err != nil {
			return err
		}
		err = r.Wait(ctx)
		if !errors.Is(err, collective.ErrPeerLost) {
			return fmt.Errorf("receive from the killed rank: %v, want ErrPeerLost", err)
		}
		fmt.Println("lost:", err)
		return nil
	}
	return fmt.Errorf("unknown scenario %q", scenario)
}

// exchange: every rank sends every size to every other rank (and itself)
// and checks every byte it receives.
func exchange(ctx context.Context, tr *shm.Transport, rank, size int) error {
	var reqs []collective.Request
	type check struct {
		got        []byte
		src, index int
	}
	var checks []check
	for src := range size {
		for i, n := range exchangeSizes {
			b := make([]byte, n)
			r, err := tr.Irecv(src, collective.Tag(i), b)
			if err != nil {
				return err
			}
			reqs = append(reqs, r)
			checks = append(checks, check{b, src, i})
		}
	}
	for dst := range size {
		for i, n := range exchangeSizes {
			s, err := tr.Isend(dst, collective.Tag(i), payload(rank, dst, i, n))
			if err != nil {
				return err
			}
			reqs = append(reqs, s)
		}
	}
	for _, q := range reqs {
		if err := q.Wait(ctx); err != nil {
			return err
		}
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, payload(c.src, rank, c.index, len(c.got))) {
			return fmt.Errorf("message %d (%d bytes) from rank %d corrupted", c.index, len(c.got), c.src)
		}
	}
	return nil
}

type rankProc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startRanks starts size rank processes for scenario over a fresh file
// store and a fresh ring directory (checked to be empty at the end).
func startRanks(t *testing.T, scenario string, size int) (procs []rankProc, store *rendezvous.FileStore) {
	t.Helper()
	storeDir := t.TempDir()
	dir := shmDir(t)
	store, err := rendezvous.OpenFileStore(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for r := range size {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envScenario+"="+scenario, envRank+"="+strconv.Itoa(r),
			envSize+"="+strconv.Itoa(size), envStore+"="+storeDir, envDir+"="+dir)
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, rankProc{cmd, out})
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
	}
	return procs, store
}

func waitProc(t *testing.T, p rankProc, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %v", limit)
	}
}

// TestMultiProcessExchange: 3 rank processes exchange 0 B .. 16 MiB
// messages through rings larger and smaller than them; no ring file is
// left behind (shmDir checks).
func TestMultiProcessExchange(t *testing.T) {
	procs, _ := startRanks(t, "exchange", 3)
	for r, p := range procs {
		if err := waitProc(t, p, 90*time.Second); err != nil {
			t.Errorf("rank %d: %v\n%s", r, err, p.out)
		}
	}
}

// TestMultiProcessKilledPeer: rank 1 is killed (SIGKILL, no Close) while
// rank 0 waits to receive from it; the receive fails with ErrPeerLost
// once the heartbeat (PeerTimeout 1 s) stood still, well within 5 s.
func TestMultiProcessKilledPeer(t *testing.T) {
	procs, store := startRanks(t, "kill", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, k := range []string{"victim-up", "posted"} {
		if _, err := store.Get(ctx, k); err != nil {
			t.Fatalf("wait for %s: %v\nrank 0: %s\nrank 1: %s", k, err, procs[0].out, procs[1].out)
		}
	}
	if err := procs[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = procs[1].cmd.Wait()
	if err := waitProc(t, procs[0], 30*time.Second); err != nil {
		t.Fatalf("survivor: %v\n%s", err, procs[0].out)
	}
	took := time.Since(killed)
	if !strings.Contains(procs[0].out.String(), "peer lost") {
		t.Errorf("survivor's output: %s", procs[0].out)
	}
	if took > 5*time.Second {
		t.Errorf("survivor noticed the killed peer after %v, want under 5 s", took)
	}
	t.Logf("survivor failed its receive %v after the kill: %s", took.Round(time.Millisecond), strings.TrimSpace(procs[0].out.String()))
}
