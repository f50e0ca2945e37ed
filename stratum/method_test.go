package stratum_test

import (
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

func TestParseMethod(t *testing.T) {
	f := func(name string, want stratum.Method) {
		t.Helper()
		if got := stratum.ParseMethod([]byte(name)); got != want {
			t.Errorf("ParseMethod(%q) = %v; want %v", name, got, want)
		}
	}
	f("mining.configure", stratum.MethodConfigure)
	f("mining.subscribe", stratum.MethodSubscribe)
	f("mining.authorize", stratum.MethodAuthorize)
	f("mining.auth", stratum.MethodAuthorize) // alias (ckpool accepts mining.auth*)
	f("mining.extranonce.subscribe", stratum.MethodExtranonceSubscribe)
	f("mining.suggest_difficulty", stratum.MethodSuggestDifficulty)
	f("mining.suggest_target", stratum.MethodSuggestTarget)
	f("mining.submit", stratum.MethodSubmit)
	f("mining.get_transactions", stratum.MethodGetTransactions)
	f("mining.notify", stratum.MethodNotify)
	f("mining.set_difficulty", stratum.MethodSetDifficulty)
	f("mining.set_extranonce", stratum.MethodSetExtranonce)
	f("mining.set_version_mask", stratum.MethodSetVersionMask)
	f("client.reconnect", stratum.MethodReconnect)
	f("client.get_version", stratum.MethodGetVersion)
	f("client.show_message", stratum.MethodShowMessage)
	f("mining.ping", stratum.MethodPing)

	// Unknown names, near misses included: matching is exact and case-sensitive.
	f("", stratum.MethodUnknown)
	f("unknown", stratum.MethodUnknown)
	f("mining.capabilities", stratum.MethodUnknown)
	f("Mining.Submit", stratum.MethodUnknown)
	f("mining.submit ", stratum.MethodUnknown)
	f("mining.authorize2", stratum.MethodUnknown)
	f("mining.suggest_difficulty(1024", stratum.MethodUnknown) // ckpool's legacy form is not parsed here
}

// TestMethodStringRoundTrip: every known method's String is its wire name, which
// ParseMethod maps back; only the mining.auth alias has no String of its own.
func TestMethodStringRoundTrip(t *testing.T) {
	seen := map[string]stratum.Method{}
	for m := stratum.Method(1); int(m) < stratum.MethodCount; m++ {
		name := m.String()
		if name == "unknown" || name == "" {
			t.Errorf("Method(%d).String() = %q; want a wire name", m, name)
			continue
		}
		if got := stratum.ParseMethod([]byte(name)); got != m {
			t.Errorf("ParseMethod(%q) = %d; want %d", name, got, m)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("methods %d and %d share the name %q", prev, m, name)
		}
		seen[name] = m
	}
	if got := stratum.MethodAuthorize.String(); got != "mining.authorize" {
		t.Errorf("MethodAuthorize.String() = %q; want mining.authorize (never the alias)", got)
	}
	for _, m := range []stratum.Method{stratum.MethodUnknown, stratum.Method(stratum.MethodCount), 255} {
		if got := m.String(); got != "unknown" {
			t.Errorf("Method(%d).String() = %q; want unknown", m, got)
		}
	}
}
