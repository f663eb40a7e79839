package httpsession

import (
	"sort"
	"testing"
)

func TestValueCache(t *testing.T) {
	var c valueCache
	c.put("a", 1)
	c.put("b", 2)
	c.put("c", 3)
	c.delete("a")  // frees the inline slot
	c.put("b", 20) // moves b inline; its map entry must go
	c.put("d", 4)
	want := map[string]any{"b": 20, "c": 3, "d": 4}
	for k, v := range want {
		if got, ok := c.get(k); !ok || got != v {
			t.Errorf("get(%q) = %v, %v; want %v", k, got, ok, v)
		}
	}
	if _, ok := c.get("a"); ok {
		t.Error("deleted key still cached")
	}
	var keys []string
	_ = c.each(func(k string, v any) error {
		if want[k] != v {
			t.Errorf("each: %q = %v, want %v", k, v, want[k])
		}
		keys = append(keys, k)
		return nil
	})
	sort.Strings(keys)
	if len(keys) != 3 || keys[0] != "b" || keys[1] != "c" || keys[2] != "d" {
		t.Errorf("each visited %v, want each of b, c, d once", keys)
	}
}
