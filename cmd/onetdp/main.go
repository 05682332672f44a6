package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "onetdp",
		Short:         "Kernel-bypass dataplane for AI clusters (AF_XDP, RoCEv2, collectives)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var cpuprofile string
	var stopProfile func()
	root.PersistentFlags().StringVar(&cpuprofile, "cpuprofile", "", "write a Go CPU profile of the command to this file (go tool pprof)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuprofile == "" {
			return nil
		}
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(newLabCmd())
	root.AddCommand(newBenchCmd(), newDemoCmd())
	root.AddCommand(newSimCmd())
	root.AddCommand(newAgentCmd())
	root.AddCommand(newStatCmd())
	root.AddCommand(newTopoCmd())
	root.AddCommand(newTopCmd())
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "onetdp:", err)
		os.Exit(1)
	}
}
