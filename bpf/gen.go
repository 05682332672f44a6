package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type class_counters -type config -type flow_key -type flow_value dispatcher dispatcher.c -- -I/usr/include/x86_64-linux-gnu
