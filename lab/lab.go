package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lab is a set of hosts, each a network namespace, joined by a veth pair
// (two hosts) or a bridge in a switch namespace (three or more). A Lab value
// is a snapshot returned by Up or Status; it is not updated afterwards and
// may be read from any goroutine.
type Lab struct {
	// Name is the lab name, the prefix of its namespaces.
	Name string
	// Hosts are h0..h<N-1> in order.
	Hosts []Host
	// Switched reports whether the hosts hang off a bridge in
	// "<Name>-sw" (three or more hosts) rather than one veth pair.
	Switched bool
	// Bottleneck is the TBF found on the link into one host, nil if none.
	Bottleneck *Bottleneck
}

// Host is one lab host: a network namespace with one interface.
type Host struct {
	// Name is "h<i>".
	Name string
	// Netns is the namespace's path under NetnsDir ("/run/netns/<lab>-h<i>").
	Netns string
	// Ifname is the host's interface, "eth0".
	Ifname string
	// Ifindex is Ifname's index inside the namespace.
	Ifindex int
	// MAC is Ifname's address; it depends only on lab name and index.
	MAC net.HardwareAddr
	// Addr is the IPv4 address with the subnet's prefix length.
	Addr netip.Prefix
	// Addr6 is the IPv6 address (/64), invalid when IPv6 is off.
	Addr6 netip.Prefix
	// MTU of Ifname (and of the switch port or peer facing it).
	MTU int
	// RxQueues is Ifname's rx queue count (equal to its tx queue count).
	RxQueues int
}

// NetnsName is the namespace's name as `ip netns` shows it.
func (h *Host) NetnsName() string { return filepath.Base(h.Netns) }

// Host finds a host by "h<i>", "<i>" or its namespace name "<lab>-h<i>".
func (l *Lab) Host(spec string) (*Host, error) {
	s := strings.TrimPrefix(spec, l.Name+"-")
	s = strings.TrimPrefix(s, "h")
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(l.Hosts) || strconv.Itoa(i) != s {
		return nil, fmt.Errorf("lab %s: host %q (have h0..h%d): %w", l.Name, spec, len(l.Hosts)-1, ErrNoSuchHost)
	}
	return &l.Hosts[i], nil
}

// Up builds the lab that opts describes and returns it as read back from the
// kernel. It is idempotent: when a lab of that name already matches opts it is
// left alone; when it differs or is partial (a crash during Up, a namespace
// deleted by hand) it is torn down and rebuilt. Nothing is created in the
// caller's namespace. On failure whatever Up created is removed. Concurrent
// Up/Down calls for the same name, also from other processes, are serialized
// by a lock file under /run/onetdp.
func Up(opts Options) (*Lab, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	unlock, err := lockLab(o.Name)
	if err != nil {
		return nil, err
	}
	defer unlock(false)
	want := plan(o)
	if ob, err := readLab(o.Name); err == nil && ob.diff(want, o) == "" {
		return ob.lab, nil
	}
	if err := down(o.Name); err != nil {
		return nil, fmt.Errorf("lab %s: remove old namespaces before rebuilding: %w", o.Name, err)
	}
	if err := build(o, want); err != nil {
		return nil, errors.Join(fmt.Errorf("lab %s up: %w", o.Name, err), down(o.Name))
	}
	ob, err := readLab(o.Name)
	if err == nil {
		if d := ob.diff(want, o); d != "" {
			err = fmt.Errorf("lab %s: read back after build: %s", o.Name, d)
		}
	}
	if err != nil {
		return nil, errors.Join(err, down(o.Name))
	}
	return ob.lab, nil
}

// Down removes every namespace of lab name, and with them every link and
// qdisc of the lab. It returns nil when the lab does not exist. Processes
// still running inside a namespace keep it alive (unnamed) until they exit.
func Down(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock, err := lockLab(name)
	if err != nil {
		return err
	}
	err = down(name)
	unlock(err == nil)
	return err
}

func down(name string) error {
	hosts, sw, err := scan(name)
	if err != nil {
		return err
	}
	var names []string
	for _, h := range hosts {
		names = append(names, HostNetns(name, h))
	}
	if sw {
		names = append(names, SwitchNetns(name))
	}
	var errs []error
	for _, n := range names {
		if err := deleteNamed(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNamed unmounts and removes /run/netns/<n>. A file that is not a
// mount point (a crash between creating and mounting it) is just removed.
func deleteNamed(n string) error {
	p := netnsPath(n)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount netns %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", p, err)
	}
	return nil
}

// lockDir holds one lock file per lab name.
const lockDir = "/run/onetdp"

// lockLab takes an exclusive flock on the lab's lock file. unlock releases
// it; when remove is true (after Down) it also deletes the file first, and
// lockers that raced with that notice the inode change and retry.
func lockLab(name string) (unlock func(remove bool), err error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock lab %s: %w", name, err)
	}
	path := filepath.Join(lockDir, "lab-"+name+".lock")
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock lab %s: %w", name, err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock lab %s: %w", name, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			return func(remove bool) {
				if remove {
					os.Remove(path)
				}
				f.Close()
			}, nil
		}
		f.Close() // removed by a Down while we waited: lock the new file
	}
}
