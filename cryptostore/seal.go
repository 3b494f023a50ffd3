package cryptostore

import (
	"encoding/binary"
)

// sealedSchemaVersion is the schema version bound into every sealed value:
// the version at which a sealed value's format last changed. A migration that
// changes one re-seals the affected rows and raises this; migrations that
// only add tables or columns leave it, so old rows keep opening.
const sealedSchemaVersion = 1

// rowAD is the associated data every sealed value is bound to: the table,
// the row key and the schema version (DESIGN.md invariant 15). A value copied
// to another row or table, or read by a different schema, fails to open.
func rowAD(table, key string) []byte {
	ad := make([]byte, 0, 5+len(table)+1+len(key)+1+4)
	ad = append(ad, "xolm\x00"...)
	ad = append(ad, table...)
	ad = append(ad, 0)
	ad = append(ad, key...)
	ad = append(ad, 0)
	return binary.BigEndian.AppendUint32(ad, sealedSchemaVersion)
}
