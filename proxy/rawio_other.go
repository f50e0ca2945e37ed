//go:build !unix

package proxy

import "syscall"

// rawConnOf returns nil: without MSG_PEEK, connections keep their read buffer while
// idle.
func rawConnOf(any) syscall.RawConn { return nil }

// waitReadable is never called where rawConnOf returns nil.
func (c *conn) waitReadable() error { return nil }

// writeNonBlocking is never called where rawConnOf returns nil.
func (c *conn) writeNonBlocking([]byte) (int, error) { return 0, nil }

// readHeaderBytes reads a PROXY header without peeking: readHeaderBytesExact.
func (c *conn) readHeaderBytes(buf []byte) (int, error) { return c.readHeaderBytesExact(buf) }
