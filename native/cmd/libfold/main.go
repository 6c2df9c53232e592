// Command libfold is the fold as a C shared library, loaded by proftask/pprof/native.py with
// ctypes: bytes in, one buffer of named arrays out (the layout is documented there).
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"unsafe"

	"proftask.dev/native/fold"
)

// proftask_fold folds (check_only: only decodes and checks) the serialized profile at data.
// It answers 1 with *out, *out_len set to a buffer the caller frees with proftask_free, or 0
// when proftask's Python fold must take the profile (refused, or anything unexpected).
//
//export proftask_fold
func proftask_fold(data unsafe.Pointer, n C.longlong, checkOnly C.int, out *unsafe.Pointer, outLen *C.longlong) (ok C.int) {
	defer func() {
		if recover() != nil {
			ok = 0
		}
	}()
	p, accepted := fold.Decode(C.GoBytes(data, C.int(n)))
	if !accepted {
		return 0
	}
	var buf []byte
	if checkOnly != 0 {
		buf = fold.EncodeSampleTypes(p)
	} else {
		buf = fold.Encode(fold.Fold(p))
	}
	*out = C.CBytes(buf)
	*outLen = C.longlong(len(buf))
	return 1
}

//export proftask_free
func proftask_free(p unsafe.Pointer) {
	C.free(p)
}

func main() {}
