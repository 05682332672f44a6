package rendezvous

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func env(kv map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want Launch
		err  error
	}{
		{"torchrun", map[string]string{"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "node0", "MASTER_PORT": "29400"},
			Launch{Rank: 3, Size: 8, LocalRank: 1, LocalSize: 2, MasterAddr: "node0", MasterPort: 29400, Source: "torchrun"}, nil},
		{"torchrun default port", map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "198.18.0.1"},
			Launch{Rank: 0, Size: 2, LocalRank: -1, LocalSize: -1, MasterAddr: "198.18.0.1", MasterPort: 29500, Source: "torchrun"}, nil},
		{"openmpi", map[string]string{"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "6", "OMPI_COMM_WORLD_LOCAL_RANK": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "3", "ONET_MASTER": "head:4000"},
			Launch{Rank: 5, Size: 6, LocalRank: 2, LocalSize: 3, MasterAddr: "head", MasterPort: 4000, Source: "openmpi"}, nil},
		{"openmpi ipv6 master", map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "ONET_MASTER": "[fd00:198:18::1]:4000"},
			Launch{Rank: 0, Size: 2, LocalRank: -1, LocalSize: -1, MasterAddr: "fd00:198:18::1", MasterPort: 4000, Source: "openmpi"}, nil},
		{"slurm", map[string]string{"SLURM_PROCID": "7", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3", "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_NODELIST": "gpu[07-08]"},
			Launch{Rank: 7, Size: 8, LocalRank: 3, LocalSize: 4, MasterAddr: "gpu07", MasterPort: 29500, Source: "slurm"}, nil},
		{"slurm tasks per node list", map[string]string{"SLURM_PROCID": "6", "SLURM_NTASKS": "7", "SLURM_LOCALID": "0", "SLURM_NODEID": "3", "SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODELIST": "a1,a2,b[3-4]"},
			Launch{Rank: 6, Size: 7, LocalRank: 0, LocalSize: 1, MasterAddr: "a1", MasterPort: 29500, Source: "slurm"}, nil},
		{"torchrun inside slurm", map[string]string{"RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "x", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			Launch{Rank: 1, Size: 4, LocalRank: -1, LocalSize: -1, MasterAddr: "x", MasterPort: 29500, Source: "torchrun"}, nil},
		{"onet wins", map[string]string{"ONET_RANK": "1", "ONET_SIZE": "2", "ONET_MASTER": "m", "RANK": "0", "WORLD_SIZE": "9"},
			Launch{Rank: 1, Size: 2, LocalRank: -1, LocalSize: -1, MasterAddr: "m", MasterPort: 29500, Source: "onet"}, nil},
		{"single rank", map[string]string{"RANK": "0", "WORLD_SIZE": "1"},
			Launch{Rank: 0, Size: 1, LocalRank: -1, LocalSize: -1, MasterAddr: "127.0.0.1", MasterPort: 29500, Source: "torchrun"}, nil},
		{"nothing", map[string]string{"HOME": "/root"}, Launch{}, ErrNoLauncher},
		{"rank >= size", map[string]string{"RANK": "4", "WORLD_SIZE": "4", "MASTER_ADDR": "x"}, Launch{}, ErrBadLaunch},
		{"size 0", map[string]string{"RANK": "0", "WORLD_SIZE": "0"}, Launch{}, ErrBadLaunch},
		{"non-numeric", map[string]string{"RANK": "one", "WORLD_SIZE": "4", "MASTER_ADDR": "x"}, Launch{}, ErrBadLaunch},
		{"negative", map[string]string{"OMPI_COMM_WORLD_RANK": "-1", "OMPI_COMM_WORLD_SIZE": "4"}, Launch{}, ErrBadLaunch},
		{"size missing", map[string]string{"RANK": "0"}, Launch{}, ErrBadLaunch},
		{"local rank >= local size", map[string]string{"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "x"}, Launch{}, ErrBadLaunch},
		{"no master", map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}, Launch{}, ErrBadLaunch},
		{"bad port", map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "70000"}, Launch{}, ErrBadLaunch},
		{"bad slurm repeat", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_TASKS_PER_NODE": "2(xz)", "SLURM_NODELIST": "n1"}, Launch{}, ErrBadLaunch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Detect(env(c.env))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Detect = %+v, %v; want error %v", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Detect = %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
}

func TestFirstHost(t *testing.T) {
	for in, want := range map[string]string{
		"n1": "n1", "n1,n2": "n1", "gpu[07-09,12],cpu1": "gpu07", "x[3]": "x3", "r[1,5]": "r1", "bad[": "",
	} {
		if got := firstHost(in); got != want {
			t.Errorf("firstHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJoinTCP: four ranks join through rank 0's TCP store, started in any
// order, and see each other's keys.
func TestJoinTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for r := n - 1; r >= 0; r-- {
		l, err := Detect(env(map[string]string{"RANK": strconv.Itoa(r), "WORLD_SIZE": strconv.Itoa(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": strconv.Itoa(port)}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Join(ctx, JoinOptions{Launch: l, Lookup: env(nil), Timeout: 10 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			if _, err := s.Add(ctx, "joined", 1); err != nil {
				errs <- err
			}
			for { // a barrier: rank 0 (the server) closes last
				v, err := s.Get(ctx, "joined")
				if err != nil {
					errs <- err
					return
				}
				if string(v) == strconv.Itoa(n) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if _, err := s.Add(ctx, "left", 1); err != nil {
				errs <- err
			}
			if l.Rank == 0 {
				for {
					if v, _ := s.Get(ctx, "left"); string(v) == strconv.Itoa(n) {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			errs <- s.Close()
		}()
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestJoinFile(t *testing.T) {
	dir := t.TempDir()
	l := Launch{Rank: 1, Size: 2, LocalRank: -1, LocalSize: -1, Source: "test"}
	s, err := Join(context.Background(), JoinOptions{Launch: l, Lookup: env(map[string]string{"ONET_STORE": "file://" + dir})})
	if err != nil {
		t.Fatal(err)
	}
	fs, ok := s.(*FileStore)
	if !ok || fs.Dir() != dir {
		t.Fatalf("Join with ONET_STORE=file://%s gave %T", dir, s)
	}
	for _, bad := range []string{"file://otherhost/x", "etcd://x", "tcp://nocolon"} {
		if _, err := Join(context.Background(), JoinOptions{Launch: l, StoreURL: bad}); err == nil {
			t.Errorf("Join with %q succeeded", bad)
		}
	}
	if _, err := Join(context.Background(), JoinOptions{Launch: Launch{Rank: 2, Size: 2}}); !errors.Is(err, ErrBadLaunch) {
		t.Errorf("Join with rank 2 of 2: %v", err)
	}
}
