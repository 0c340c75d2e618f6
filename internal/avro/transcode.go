package avro

// transcode writes the reader's binary for one writer value. Values whose
// encoding does not change are copied byte for byte.
func (in *input) transcode(dst []byte, p *plan) ([]byte, error) {
	start := in.pos
	var err error
	switch p.op {
	case opNull:
		return dst, nil
	case opBoolean:
		_, err = in.boolean()
	case opInt:
		_, err = in.int()
	case opLong:
		_, err = in.promotedLong(p) // an int's varint is a valid long
	case opFloat:
		if p.from != kindFloat {
			f, err := in.promotedFloat(p)
			return appendFloat(dst, float32(f)), err
		}
		_, err = in.float()
	case opDouble:
		if p.from != kindDouble {
			f, err := in.promotedFloat(p)
			return appendDouble(dst, f), err
		}
		_, err = in.double()
	case opBytes:
		_, err = in.bytes()
	case opString:
		_, err = in.text() // bytes promoted to string must be UTF-8
	case opFixed:
		_, err = in.next(p.w.size)
	case opEnum:
		i, err := in.enumIndex(p)
		return appendLong(dst, int64(i)), err
	case opArray, opMap:
		return in.transcodeBlocks(dst, p)
	case opRecord:
		return in.transcodeRecord(dst, p)
	case opWriterUnion:
		b, err := in.writerBranch(p)
		if err != nil {
			return dst, err
		}
		return in.transcode(dst, b)
	case opReaderUnion:
		return in.transcode(appendLong(dst, int64(p.index)), p.inner)
	default:
		return dst, in.fail(p.fail)
	}
	if err != nil {
		return dst, err
	}
	return append(dst, in.buf[start:in.pos]...), nil
}

func (in *input) transcodeBlocks(dst []byte, p *plan) ([]byte, error) {
	if err := in.enter(); err != nil {
		return dst, err
	}
	for i := 0; ; {
		n, err := in.blockCount(p.minItem)
		if err != nil {
			return dst, err
		}
		dst = appendLong(dst, int64(n)) // a sized block loses its size, which changes
		if n == 0 {
			break
		}
		for ; n > 0; n-- {
			key, err := in.item(p)
			if err != nil {
				return dst, err
			}
			if p.op == opMap {
				dst = appendBytes(dst, key)
			}
			if dst, err = in.transcode(dst, p.elem); err != nil {
				return dst, withPath(err, itemSeg(p, i, key))
			}
			i++
		}
	}
	in.depth--
	return dst, nil
}

func (in *input) transcodeRecord(dst []byte, p *plan) ([]byte, error) {
	if err := in.enter(); err != nil {
		return dst, err
	}
	mark := len(dst)
	var spans [][2]int
	if !p.ordered {
		spans = make([][2]int, p.nfields)
	}
	for i := range p.steps {
		st := &p.steps[i]
		if st.plan == nil {
			if err := in.skip(st.skip); err != nil {
				return dst, err
			}
			continue
		}
		start := len(dst)
		var err error
		if dst, err = in.transcode(dst, st.plan); err != nil {
			return dst, withPath(err, st.name)
		}
		if spans != nil {
			spans[st.index] = [2]int{start, len(dst)}
		}
	}
	for _, f := range p.fills {
		start := len(dst)
		dst = append(dst, f.bin...)
		if spans != nil {
			spans[f.index] = [2]int{start, len(dst)}
		}
	}
	if spans != nil {
		dst = reorder(dst, mark, spans, 0)
	}
	in.depth--
	return dst, nil
}
