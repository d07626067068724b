// Prints pdata's Value.AsString for typed values read as JSON from stdin, so the Python
// port in closedloop._pdata can be checked against the collector's own code.
package main

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

type item struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v"`
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func fill(dst pcommon.Value, it item) {
	switch it.T {
	case "s":
		var s string
		must(json.Unmarshal(it.V, &s))
		dst.SetStr(s)
	case "i":
		var i int64
		must(json.Unmarshal(it.V, &i))
		dst.SetInt(i)
	case "d":
		var bits string
		must(json.Unmarshal(it.V, &bits))
		u, err := strconv.ParseUint(bits, 10, 64)
		must(err)
		dst.SetDouble(math.Float64frombits(u))
	case "b":
		var b bool
		must(json.Unmarshal(it.V, &b))
		dst.SetBool(b)
	case "bytes":
		var text string
		must(json.Unmarshal(it.V, &text))
		raw, err := base64.StdEncoding.DecodeString(text)
		must(err)
		dst.SetEmptyBytes().FromRaw(raw)
	case "slice":
		var items []item
		must(json.Unmarshal(it.V, &items))
		slice := dst.SetEmptySlice()
		for _, x := range items {
			fill(slice.AppendEmpty(), x)
		}
	case "map":
		var entries map[string]item
		must(json.Unmarshal(it.V, &entries))
		m := dst.SetEmptyMap()
		for k, x := range entries {
			fill(m.PutEmpty(k), x)
		}
	default:
		panic("unknown type " + it.T)
	}
}

func main() {
	var items []item
	must(json.NewDecoder(os.Stdin).Decode(&items))
	out := make([]string, 0, len(items))
	for _, it := range items {
		v := pcommon.NewValueEmpty()
		fill(v, it)
		out = append(out, v.AsString())
	}
	must(json.NewEncoder(os.Stdout).Encode(out))
}
