package httpsession

// values is a session's values: each key's encoding by the codec.
//
// A session holds a handful of keys, and for a handful, lists searched in
// order beat a map. A loaded record's values stay where they are: spans
// hold the offsets of each key and value in the record's bytes, so a
// request that only reads its session allocates one small pointer-free
// slice, where a map cost three allocations and hashing every key: on six
// keys, decoding takes less than half the time it took with the map
// (BenchmarkDecodeSession against BenchmarkDecodeRecord/ms, which still
// builds one for a Record). What the request sets or deletes goes into a
// second list, consulted first. Past flatMax keys, or for a record whose
// keys need decoding, the values are a map instead.
type values struct {
	rec   []byte            // the loaded record, which is never modified afterwards
	spans []span            // the loaded values: offsets into rec, in record order
	list  []value           // values set (raw nil: deleted) since the load, at most flatMax
	m     map[string][]byte // every value, once a map is needed; the rest is then unused
}

// span locates one loaded value: its key, plain ASCII without escapes, is
// rec[k0:k1], and its encoding rec[v0:v1].
type span struct{ k0, k1, v0, v1 int32 }

// value is one key and its encoding.
type value struct {
	key string
	raw []byte
}

// flatMax is the most values kept in each list.
const flatMax = 16

func (v *values) get(key string) ([]byte, bool) {
	if v.m != nil {
		raw, ok := v.m[key]
		return raw, ok
	}
	for i := range v.list {
		if v.list[i].key == key {
			return v.list[i].raw, v.list[i].raw != nil
		}
	}
	return v.loaded(key)
}

// loaded returns key's value as loaded.
func (v *values) loaded(key string) ([]byte, bool) {
	for _, s := range v.spans {
		if string(v.rec[s.k0:s.k1]) == key {
			return v.rec[s.v0:s.v1], true
		}
	}
	return nil, false
}

func (v *values) set(key string, raw []byte) {
	if raw == nil {
		raw = []byte{} // a codec's empty encoding is a value: nil is a deletion
	}
	v.put(key, raw)
}

func (v *values) delete(key string) { v.put(key, nil) }

// put sets key's value, or deletes it when raw is nil.
func (v *values) put(key string, raw []byte) {
	if v.m == nil {
		for i := range v.list {
			if v.list[i].key == key {
				v.list[i].raw = raw
				return
			}
		}
		if len(v.list) < flatMax {
			v.list = append(v.list, value{key, raw})
			return
		}
		*v = values{m: v.record()}
		if v.m == nil {
			v.m = make(map[string][]byte)
		}
	}
	if raw == nil {
		delete(v.m, key)
	} else {
		v.m[key] = raw
	}
}

func (v *values) len() int {
	if v.m != nil {
		return len(v.m)
	}
	n := len(v.spans)
	for _, e := range v.list {
		_, was := v.loaded(e.key)
		switch {
		case was && e.raw == nil:
			n--
		case !was && e.raw != nil:
			n++
		}
	}
	return n
}

// member is one value as appendAll lists it. A loaded value's key is its
// bytes in the record (plain ASCII without escapes, so also its JSON
// text), which nothing needs to copy; a key set since is key.
type member struct {
	key    string
	loaded []byte
	raw    []byte
}

// name returns the member's key; for a loaded one, a copy.
func (m *member) name() string {
	if m.loaded != nil {
		return string(m.loaded)
	}
	return m.key
}

// memberLess orders members by key, comparing loaded keys where they are.
func memberLess(a, b *member) bool {
	switch {
	case a.loaded != nil && b.loaded != nil:
		return string(a.loaded) < string(b.loaded)
	case a.loaded != nil:
		return string(a.loaded) < b.key
	case b.loaded != nil:
		return a.key < string(b.loaded)
	}
	return a.key < b.key
}

// appendAll appends every value to dst, in no particular order, without
// copying a key.
func (v *values) appendAll(dst []member) []member {
	for k, raw := range v.m {
		dst = append(dst, member{key: k, raw: raw})
	}
	for _, s := range v.spans {
		if key := v.rec[s.k0:s.k1]; !v.changed(key) {
			dst = append(dst, member{loaded: key, raw: v.rec[s.v0:s.v1]})
		}
	}
	for _, e := range v.list {
		if e.raw != nil {
			dst = append(dst, member{key: e.key, raw: e.raw})
		}
	}
	return dst
}

// changed reports whether a loaded key was set or deleted since the load.
func (v *values) changed(key []byte) bool {
	for i := range v.list {
		if v.list[i].key == string(key) {
			return true
		}
	}
	return false
}

// record returns the values as a Record holds them: a map of its own, nil
// when there are none.
func (v *values) record() map[string][]byte {
	var buf [flatMax]member
	all := v.appendAll(buf[:0])
	if len(all) == 0 {
		return nil
	}
	m := make(map[string][]byte, len(all))
	for i := range all {
		m[all[i].name()] = all[i].raw
	}
	return m
}

// loadSpans makes spans (offsets into rec, in record order, as the JSON
// scanner found them; at most flatMax, which the scanner checks before it
// makes them) the values, if they can be read in place: every key plain
// ASCII without escapes (so its bytes are the key) and none repeated (a
// map keeps the last). It reports false, changing nothing, otherwise.
func (v *values) loadSpans(rec []byte, spans []span) bool {
	sorted := true
	for i, s := range spans {
		key := rec[s.k0:s.k1]
		for _, c := range key {
			if c == '\\' || c >= 0x80 {
				return false
			}
		}
		if i > 0 && string(key) <= string(rec[spans[i-1].k0:spans[i-1].k1]) {
			sorted = false
		}
	}
	if !sorted { // a record Go did not write: look for a repeated key
		for i, s := range spans {
			for _, o := range spans[:i] {
				if string(rec[s.k0:s.k1]) == string(rec[o.k0:o.k1]) {
					return false
				}
			}
		}
	}
	*v = values{rec: rec, spans: spans}
	return true
}
