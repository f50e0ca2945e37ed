package stratum

import (
	"bufio"
	"bytes"
	"io"
)

// DefaultMaxLineSize is the line limit a LineReader gets when none is given: room for
// a mining.notify carrying the largest coinbase a Job accepts (MaxCoinbaseSize bytes,
// twice that in hex) and a full merkle branch.
const DefaultMaxLineSize = 2*MaxCoinbaseSize + MaxBranchLen*67 + 1024

// LineReader splits a stream into Stratum lines without copying, keeping a line that
// arrives in several reads whole. It is not safe for concurrent use.
type LineReader struct {
	r   *bufio.Reader
	max int
}

// NewLineReader reads from r; a line longer than maxLine bytes, its "\n" or "\r\n"
// not counted (DefaultMaxLineSize when maxLine <= 0), is an ErrLineTooLong.
func NewLineReader(r io.Reader, maxLine int) *LineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	// The buffer holds the line and its "\r\n": the limit counts the line alone.
	return &LineReader{r: bufio.NewReaderSize(r, maxLine+2), max: maxLine}
}

// ReadLine returns the next non-empty line without its "\n" or "\r\n". The slice is
// valid until the next call. After ErrLineTooLong the stream is out of step: close it.
// A final line without a newline is returned before io.EOF.
func (l *LineReader) ReadLine() ([]byte, error) {
	for {
		line, err := l.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, ErrLineTooLong
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > l.max {
			return nil, ErrLineTooLong
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		return line, nil
	}
}

// Buffered returns the number of bytes read from the stream but not yet returned: a
// writer may hold back a flush while more requests are already waiting.
func (l *LineReader) Buffered() int { return l.r.Buffered() }

// Peek returns the next n bytes without consuming them (for sniffing a TLS handshake
// or a PROXY protocol header before the first line).
func (l *LineReader) Peek(n int) ([]byte, error) { return l.r.Peek(n) }
