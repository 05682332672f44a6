package lldp

import (
	"cmp"
	"slices"
)

func sortNeighbors(ns []Neighbor) {
	slices.SortFunc(ns, func(x, y Neighbor) int {
		return cmp.Or(cmp.Compare(x.Ifindex, y.Ifindex), cmp.Compare(x.ChassisID, y.ChassisID), cmp.Compare(x.PortID, y.PortID))
	})
}
