package stratumtest

import (
	"testing"
	"time"
)

func TestJobStampRoundTrip(t *testing.T) {
	p, err := NewPool(PoolConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := time.Now()
	j := p.NewBlock()
	after := time.Now()
	at, ok := JobStamp(j.Coinb2)
	if !ok {
		t.Fatalf("no stamp in coinb2 %x", j.Coinb2)
	}
	if at.Before(before.Add(-time.Microsecond)) || at.After(after) {
		t.Fatalf("stamp %v outside [%v, %v]", at, before, after)
	}
	if _, ok := JobStamp(j.Coinb2[:len(j.Coinb2)/4]); ok {
		t.Fatal("a cut coinb2 gave a stamp")
	}
	if _, ok := JobStamp([]byte("unrelated coinbase bytes")); ok {
		t.Fatal("a foreign coinb2 gave a stamp")
	}
}
