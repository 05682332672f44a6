// Command onetdp is the CLI and daemon of onetdp: lab hosts in network
// namespaces, benchmarks, and (in later versions) the agent, top and sim.
package main
