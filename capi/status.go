package main

import (
	"context"
	"errors"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
)

// status is onet_status; the values are onet.h's and part of the ABI.
type status int32

const (
	statusOK           status = 0
	statusInvalid      status = 1
	statusTimeout      status = 2
	statusPeerLost     status = 3
	statusAborted      status = 4
	statusClosed       status = 5
	statusNotSupported status = 6
	statusInternal     status = 7
	numStatus                 = 8
)

// statusNames are the enum constants' names, as onet_status_name returns
// them.
var statusNames = [numStatus]string{"ONET_OK", "ONET_ERR_INVALID", "ONET_ERR_TIMEOUT", "ONET_ERR_PEER_LOST",
	"ONET_ERR_ABORTED", "ONET_ERR_CLOSED", "ONET_ERR_NOT_SUPPORTED", "ONET_ERR_INTERNAL"}

// unknownStatusName is onet_status_name's answer outside the enum.
const unknownStatusName = "ONET_ERR_UNKNOWN"

func (s status) String() string {
	if s >= 0 && s < numStatus {
		return statusNames[s]
	}
	return unknownStatusName
}

// errInternal marks errors of this package that are not the caller's
// fault (a recovered panic).
var errInternal = errors.New("internal error")

// statusOf maps an error to its status. The order matters where one error
// wraps several sentinels: an operation failed by an abort or a close
// also carries the lost-peer error that surfaced it, and the abort or
// close is what the caller should act on.
func statusOf(err error) status {
	switch {
	case err == nil:
		return statusOK
	case errors.Is(err, errInternal):
		return statusInternal
	case errors.Is(err, collective.ErrAborted):
		return statusAborted
	case errors.Is(err, collective.ErrClosed):
		return statusClosed
	case errors.Is(err, collective.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return statusTimeout
	case errors.Is(err, collective.ErrPeerLost):
		return statusPeerLost
	case errors.Is(err, collective.ErrInvalidArgument), errors.Is(err, collective.ErrSizeMismatch),
		errors.Is(err, rendezvous.ErrBadLaunch), errors.Is(err, rendezvous.ErrNoLauncher):
		return statusInvalid
	case errors.Is(err, collective.ErrNotSupported):
		return statusNotSupported
	case errors.Is(err, context.Canceled):
		return statusAborted
	}
	return statusInternal
}
