package main

import (
	"fmt"
	"os"

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
	root.AddCommand(newLabCmd())
	root.AddCommand(newBenchCmd(), newDemoCmd())
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "onetdp:", err)
		os.Exit(1)
	}
}
