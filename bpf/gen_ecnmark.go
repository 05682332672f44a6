package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type ecn_counters -type ecn_config -type ecn_state ecnmark ecnmark.c -- -I/usr/include/x86_64-linux-gnu
