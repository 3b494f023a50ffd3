package machine

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// storeDump returns every row of every table of the store file except the
// lease's (which every transaction renews), as text: a line per row, the
// table's name then each value with its type, blobs in hex, the rows of a
// table sorted. Two dumps are equal only if the stored state is
// byte-identical. Tables named in skip are left out.
func storeDump(t testing.TB, path string, skip ...string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
		AND name NOT LIKE 'xprocess_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(skip, name) {
			tables = append(tables, name)
		}
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var lines []string
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line strings.Builder
			line.WriteString(table)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					fmt.Fprintf(&line, " []byte:%s", hex.EncodeToString(b))
				} else {
					fmt.Fprintf(&line, " %T:%v", v, v)
				}
			}
			lines = append(lines, line.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		slices.Sort(lines)
		for _, l := range lines {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	return out.String()
}
