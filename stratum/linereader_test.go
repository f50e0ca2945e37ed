package stratum_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hashrelay/hashrelay/stratum"
)

// readAllLines reads lines until an error, copying each (a line is only valid until
// the next ReadLine).
func readAllLines(lr *stratum.LineReader) ([]string, error) {
	var lines []string
	for {
		l, err := lr.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(l))
	}
}

func TestLineReader(t *testing.T) {
	f := func(name, in string, wrap func(io.Reader) io.Reader, want ...string) {
		t.Helper()
		lr := stratum.NewLineReader(wrap(strings.NewReader(in)), 0)
		got, err := readAllLines(lr)
		if err != io.EOF {
			t.Errorf("%s: error %v; want io.EOF after the last line", name, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("%s: got lines %q; want %q", name, got, want)
		}
	}
	plain := func(r io.Reader) io.Reader { return r }
	for _, w := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", plain},
		{"one byte per read", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
	} {
		t.Run(w.name, func(t *testing.T) {
			f("two lines", "{\"a\":1}\n{\"b\":2}\n", w.wrap, `{"a":1}`, `{"b":2}`)
			f("crlf", "{\"a\":1}\r\n{\"b\":2}\r\n", w.wrap, `{"a":1}`, `{"b":2}`)
			f("blank lines skipped", "\n\r\n  \t\n{\"a\":1}\n\n\n{\"b\":2}\n\r\n", w.wrap, `{"a":1}`, `{"b":2}`)
			f("last line without newline", "{\"a\":1}\n{\"b\":2}", w.wrap, `{"a":1}`, `{"b":2}`)
			f("only a partial line", "{\"a\"", w.wrap, `{"a"`)
			f("trailing blank without newline", "{\"a\":1}\n   ", w.wrap, `{"a":1}`)
			f("empty stream", "", w.wrap)
			f("inner spaces kept", " {\"a\": 1} \n", w.wrap, ` {"a": 1} `)
		})
	}
}

// TestLineReaderLimit: a line of exactly the limit (its terminator not counted) is
// read whole, with "\n" or "\r\n"; one byte more is ErrLineTooLong.
func TestLineReaderLimit(t *testing.T) {
	const max = 64
	f := func(name, in string, want string, wantErr error) {
		t.Helper()
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(in)
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := stratum.NewLineReader(r, max).ReadLine()
			if !errors.Is(err, wantErr) || string(got) != want {
				t.Errorf("%s (one byte reads %v): got %q, %v; want %q, %v", name, one, got, err, want, wantErr)
			}
		}
	}
	at := strings.Repeat("x", max)
	over := strings.Repeat("x", max+1)
	f("exactly max, lf", at+"\n", at, nil)
	f("exactly max, crlf", at+"\r\n", at, nil)
	f("exactly max, at eof", at, at, nil)
	f("one over, lf", over+"\n", "", stratum.ErrLineTooLong)
	f("one over, crlf", over+"\r\n", "", stratum.ErrLineTooLong)
	f("one over, at eof", over, "", stratum.ErrLineTooLong)
	f("far over", strings.Repeat("y", 10*max)+"\n", "", stratum.ErrLineTooLong)

	// A limit below bufio's 16-byte minimum buffer is still the limit.
	got, err := stratum.NewLineReader(strings.NewReader("0123456789\n"), 4).ReadLine()
	if !errors.Is(err, stratum.ErrLineTooLong) {
		t.Errorf("10-byte line with limit 4: got %q, %v; want ErrLineTooLong", got, err)
	}
	got, err = stratum.NewLineReader(strings.NewReader("0123\n"), 4).ReadLine()
	if err != nil || string(got) != "0123" {
		t.Errorf("4-byte line with limit 4: got %q, %v; want 0123", got, err)
	}
}

// TestLineReaderDefaultLimit: a maxLine of 0 means DefaultMaxLineSize.
func TestLineReaderDefaultLimit(t *testing.T) {
	at := strings.Repeat("a", stratum.DefaultMaxLineSize)
	got, err := stratum.NewLineReader(strings.NewReader(at+"\n"), 0).ReadLine()
	if err != nil || len(got) != stratum.DefaultMaxLineSize {
		t.Errorf("line of DefaultMaxLineSize: got %d bytes, %v; want %d, nil", len(got), err, stratum.DefaultMaxLineSize)
	}
	_, err = stratum.NewLineReader(strings.NewReader(at+"a\n"), 0).ReadLine()
	if !errors.Is(err, stratum.ErrLineTooLong) {
		t.Errorf("line of DefaultMaxLineSize+1: error %v; want ErrLineTooLong", err)
	}
}

// TestLineReaderBufferedPeek: Peek sniffs without consuming, and Buffered counts the
// bytes of pipelined requests already read but not yet returned.
func TestLineReaderBufferedPeek(t *testing.T) {
	in := "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"
	lr := stratum.NewLineReader(strings.NewReader(in), 0)
	if got := lr.Buffered(); got != 0 {
		t.Errorf("Buffered before any read = %d; want 0", got)
	}
	p, err := lr.Peek(1)
	if err != nil || string(p) != "{" {
		t.Fatalf("Peek(1) = %q, %v; want \"{\"", p, err)
	}
	if got := lr.Buffered(); got != len(in) {
		t.Errorf("Buffered after Peek = %d; want %d", got, len(in))
	}
	l, err := lr.ReadLine()
	if err != nil || string(l) != `{"id":1}` {
		t.Fatalf("first line after Peek = %q, %v; want {\"id\":1} (Peek must not consume)", l, err)
	}
	if got, want := lr.Buffered(), len(in)-len("{\"id\":1}\n"); got != want {
		t.Errorf("Buffered after one line = %d; want %d", got, want)
	}
	lr.ReadLine()
	lr.ReadLine()
	if got := lr.Buffered(); got != 0 {
		t.Errorf("Buffered after all lines = %d; want 0", got)
	}
	if _, err := lr.ReadLine(); err != io.EOF {
		t.Errorf("after all lines: %v; want io.EOF", err)
	}

	// Peek of a TLS ClientHello's first bytes, on one-byte reads: the reader fills.
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	lr = stratum.NewLineReader(iotest.OneByteReader(bytes.NewReader(hello)), 0)
	p, err = lr.Peek(3)
	if err != nil || !bytes.Equal(p, hello[:3]) {
		t.Errorf("Peek(3) of a ClientHello = %x, %v; want %x", p, err, hello[:3])
	}

	// Peek of more than is sent reports the stream's end.
	lr = stratum.NewLineReader(strings.NewReader("{"), 0)
	if p, err := lr.Peek(2); err != io.EOF || string(p) != "{" {
		t.Errorf("Peek(2) of a 1-byte stream = %q, %v; want \"{\", io.EOF", p, err)
	}
}

// TestLineReaderReadError: an error other than io.EOF is returned as is.
func TestLineReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("{\"id\":1}\n"), iotest.ErrReader(boom))
	lr := stratum.NewLineReader(r, 0)
	if l, err := lr.ReadLine(); err != nil || string(l) != `{"id":1}` {
		t.Fatalf("first line = %q, %v; want {\"id\":1}", l, err)
	}
	if _, err := lr.ReadLine(); !errors.Is(err, boom) {
		t.Errorf("second read: %v; want %v", err, boom)
	}
}
