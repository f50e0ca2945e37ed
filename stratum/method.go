package stratum

// Method identifies a Stratum V1 method, in either direction.
type Method uint8

// The methods of Stratum V1 and its extensions (BIP 310, NiceHash xnsub), and those
// seen in the wild.
const (
	MethodUnknown Method = iota

	// Miner to pool.
	MethodConfigure           // mining.configure (BIP 310)
	MethodSubscribe           // mining.subscribe
	MethodAuthorize           // mining.authorize, and its alias mining.auth
	MethodExtranonceSubscribe // mining.extranonce.subscribe (NiceHash)
	MethodSuggestDifficulty   // mining.suggest_difficulty
	MethodSuggestTarget       // mining.suggest_target
	MethodSubmit              // mining.submit
	MethodGetTransactions     // mining.get_transactions (bfgminer, after each job)

	// Pool to miner.
	MethodNotify         // mining.notify
	MethodSetDifficulty  // mining.set_difficulty
	MethodSetExtranonce  // mining.set_extranonce (NiceHash)
	MethodSetVersionMask // mining.set_version_mask (BIP 310)
	MethodReconnect      // client.reconnect
	MethodGetVersion     // client.get_version
	MethodShowMessage    // client.show_message
	MethodPing           // mining.ping (either direction)

	methodCount
)

// MethodCount is the number of methods including MethodUnknown, for arrays indexed by
// Method.
const MethodCount = int(methodCount)

var methodNames = [...]string{
	MethodUnknown:             "unknown",
	MethodConfigure:           "mining.configure",
	MethodSubscribe:           "mining.subscribe",
	MethodAuthorize:           "mining.authorize",
	MethodExtranonceSubscribe: "mining.extranonce.subscribe",
	MethodSuggestDifficulty:   "mining.suggest_difficulty",
	MethodSuggestTarget:       "mining.suggest_target",
	MethodSubmit:              "mining.submit",
	MethodGetTransactions:     "mining.get_transactions",
	MethodNotify:              "mining.notify",
	MethodSetDifficulty:       "mining.set_difficulty",
	MethodSetExtranonce:       "mining.set_extranonce",
	MethodSetVersionMask:      "mining.set_version_mask",
	MethodReconnect:           "client.reconnect",
	MethodGetVersion:          "client.get_version",
	MethodShowMessage:         "client.show_message",
	MethodPing:                "mining.ping",
}

// String returns the method's wire name ("unknown" for MethodUnknown).
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "unknown"
}

// ParseMethod maps a wire name to its Method, without allocating. mining.auth is an
// alias of mining.authorize.
func ParseMethod(name []byte) Method {
	switch string(name) {
	case "mining.configure":
		return MethodConfigure
	case "mining.subscribe":
		return MethodSubscribe
	case "mining.authorize", "mining.auth":
		return MethodAuthorize
	case "mining.extranonce.subscribe":
		return MethodExtranonceSubscribe
	case "mining.suggest_difficulty":
		return MethodSuggestDifficulty
	case "mining.suggest_target":
		return MethodSuggestTarget
	case "mining.submit":
		return MethodSubmit
	case "mining.get_transactions":
		return MethodGetTransactions
	case "mining.notify":
		return MethodNotify
	case "mining.set_difficulty":
		return MethodSetDifficulty
	case "mining.set_extranonce":
		return MethodSetExtranonce
	case "mining.set_version_mask":
		return MethodSetVersionMask
	case "client.reconnect":
		return MethodReconnect
	case "client.get_version":
		return MethodGetVersion
	case "client.show_message":
		return MethodShowMessage
	case "mining.ping":
		return MethodPing
	}
	return MethodUnknown
}
