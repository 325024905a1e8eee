// Package recordtest generates realistic product files for tests and
// benchmarks: deterministic for a seed, with an optional, documented set of
// faulty rows whose positions depend only on the row number (FaultOf), so a
// test can know the expected outcome of every row without parsing.
package recordtest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// Header is the header line WriteProductCSV writes (row 1).
const Header = "sku,name,category,brand,price,currency,stock,status,description,image_urls"

// Fault names: what is wrong with a faulty row.
const (
	FaultMissingPrice   = "missing_price"    // price is empty
	FaultPriceNotNumber = "price_not_number" // price is "abc"
	FaultPriceDecimals  = "price_decimals"   // price is "12.345"
	FaultNegativeStock  = "negative_stock"   // stock is "-5"
	FaultBadCurrency    = "bad_currency"     // currency is "RMB"
	FaultBadStatus      = "bad_status"       // status is "deleted"
	FaultDuplicateSKU   = "duplicate_sku"    // sku is the previous row's sku: SKU(row-1)
	FaultBadURL         = "bad_url"          // image_urls is "not a url|ftp://img.example.com/p/1.jpg"
	FaultEmptyName      = "empty_name"       // name is empty
)

// Faults lists the fault names in the order FaultOf cycles through them.
var Faults = []string{
	FaultMissingPrice, FaultPriceNotNumber, FaultPriceDecimals, FaultNegativeStock,
	FaultBadCurrency, FaultBadStatus, FaultDuplicateSKU, FaultBadURL, FaultEmptyName,
}

// FaultEvery and FaultPhase place the faults: with faults on, the data row
// with row number r is faulty when r%FaultEvery == FaultPhase (rows 7, 27,
// 47, ...: 5% of the rows). The row before a faulty row is never faulty, so
// the first occurrence of a duplicated SKU is always a valid row.
const (
	FaultEvery = 20
	FaultPhase = 7
)

// FaultOf returns the fault WriteProductCSV(faults=true) puts on the row with
// row number row (header = 1, first data row = 2; every row is one line
// number apart, whatever its quoted newlines), or "" for a valid row. The
// fault is Faults[(row/FaultEvery) % len(Faults)].
func FaultOf(row int64) string {
	if row < 2 || row%FaultEvery != FaultPhase {
		return ""
	}
	return Faults[(row/FaultEvery)%int64(len(Faults))]
}

// Expected returns the column a fault is in and the reason the built-in
// default profile of docs/invariants.md implies for it. (The validator is the
// authority; this is what the generator's author expects.)
func Expected(fault string) (field string, reason failure.Reason) {
	switch fault {
	case FaultMissingPrice:
		return "price", failure.MissingField
	case FaultPriceNotNumber, FaultPriceDecimals:
		return "price", failure.InvalidNumber
	case FaultNegativeStock:
		return "stock", failure.OutOfRange
	case FaultBadCurrency:
		return "currency", failure.InvalidValue
	case FaultBadStatus:
		return "status", failure.InvalidValue
	case FaultDuplicateSKU:
		return "sku", failure.DuplicateSKU
	case FaultBadURL:
		return "image_urls", failure.InvalidValue
	case FaultEmptyName:
		return "name", failure.MissingField
	}
	return "", ""
}

// SKU returns the sku of the row with row number row (a duplicate_sku row
// has SKU(row-1) instead).
func SKU(row int64) string { return fmt.Sprintf("SKU-%08d", row) }

var (
	categories = []string{"Electronics/Audio", "Electronics/Phones", "Home/Kitchen", "服装/女装",
		"Toys", "Sports/Outdoor", "Beauty", "Books", "Grocery/Snacks", "数码/配件"}
	brands = []string{"Acme", "Globex", "Initech", "小米", "Umbrella", "Hooli", "Stark", "华为", "Wayne", ""}
	nouns  = []string{"Wireless Earbuds", "Water Bottle", "Running Shoes", "Desk Lamp", "Backpack",
		"Phone Case", "Coffee Grinder", "Yoga Mat", "Notebook", "Bluetooth Speaker"}
	cnNouns = []string{"无线蓝牙耳机", "保温杯", "跑步鞋", "台灯", "双肩包", "手机壳", "咖啡研磨机", "瑜伽垫"}
	colors  = []string{"black", "white", "red", "blue", "green", "silver"}
	plain   = []string{
		"Everyday item with a one year warranty and free returns",
		"Lightweight and durable; ships in recyclable packaging",
		"Best seller in its category for three years running",
		"Compact design that fits in any bag or drawer",
		"",
	}
)

// WriteProductCSV writes a product CSV of rows data rows after the header
// line: CRLF line ends (as Excel writes), UTF-8 without BOM, the default
// profile's columns. About 40% of the rows have a quoted description with
// commas, a newline and doubled quotes; some names, brands and categories
// are Chinese. The output depends only on rows, seed and faults. With
// faults, the rows FaultOf names are broken in the way it says; all other
// rows are valid under the default profile.
func WriteProductCSV(w io.Writer, rows int, seed int64, faults bool) error {
	return WriteProducts(w, Options{Rows: rows, Seed: seed, Faults: faults})
}

// Options says what WriteProducts writes.
type Options struct {
	Rows   int   // data rows
	Seed   int64 // the random generator's seed
	Faults bool  // break the rows FaultOf names
	// Heavy, when set, makes the rows it picks (by row number) heavy, as a
	// best-selling product's listing is: a long Chinese description
	// (HeavyDescription characters, 3 bytes each in UTF-8) and HeavyImages
	// image URLs. That is about 85 times the bytes of an ordinary row and,
	// in this engine, about 20 times the work (decoding, length check, 32
	// URLs parsed, a row of ~20 KB written; make bench measures it). A heavy
	// row is otherwise the row it would have been (same sku, same fault),
	// and valid under the default profile (descriptions up to 10,000
	// characters).
	Heavy func(row int64) bool
}

// The size of a heavy row's description (characters) and image list.
const (
	HeavyDescription = 6000
	HeavyImages      = 32
)

// WriteProducts writes the product CSV WriteProductCSV describes, with the
// heavy rows o.Heavy picks. Rows that are not heavy are the same as
// WriteProductCSV's for the same rows, seed and faults.
func WriteProducts(w io.Writer, o Options) error {
	rows, seed, faults := o.Rows, o.Seed, o.Faults
	bw := bufio.NewWriterSize(w, 64<<10)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9E3779B97F4A7C15))
	bw.WriteString(Header)
	bw.WriteString("\r\n")
	var cells [10]string
	var sb strings.Builder
	for k := range rows {
		row := int64(k) + 2
		sku := SKU(row)
		var name string
		if rng.IntN(5) == 0 {
			name = fmt.Sprintf("%s %s-%d", cnNouns[rng.IntN(len(cnNouns))], "X", rng.IntN(100))
		} else {
			name = fmt.Sprintf("%s %s %d", nouns[rng.IntN(len(nouns))], colors[rng.IntN(len(colors))], rng.IntN(1000))
		}
		category := categories[rng.IntN(len(categories))]
		brand := brands[rng.IntN(len(brands))]
		price := fmt.Sprintf("%d.%02d", rng.IntN(5000), rng.IntN(100))
		if rng.IntN(10) == 0 {
			price = fmt.Sprintf("%d", 1+rng.IntN(999))
		}
		currency := [...]string{"CNY", "CNY", "CNY", "CNY", "CNY", "CNY", "USD", "USD", "EUR", ""}[rng.IntN(10)]
		stock := fmt.Sprintf("%d", rng.IntN(5000))
		status := [...]string{"active", "active", "active", "active", "active", "active", "active", "inactive", "draft", ""}[rng.IntN(10)]
		var desc string
		if rng.IntN(10) < 4 {
			desc = fmt.Sprintf("Size: %d\" screen, %s and %s finish,\nincludes \"%s\" edition accessories, %d-day return policy",
				5+rng.IntN(10), colors[rng.IntN(len(colors))], colors[rng.IntN(len(colors))],
				[...]string{"pro", "lite", "max", "标准版"}[rng.IntN(4)], 7+rng.IntN(24))
		} else {
			desc = plain[rng.IntN(len(plain))]
		}
		sb.Reset()
		for i, n := 0, 1+rng.IntN(3); i < n; i++ {
			if i > 0 {
				sb.WriteByte('|')
			}
			fmt.Fprintf(&sb, "https://img.example.com/p/%08d/%d.jpg", row, i+1)
		}
		images := sb.String()
		if o.Heavy != nil && o.Heavy(row) {
			desc, images = heavyDescription(row), heavyImages(row)
		}

		if faults {
			switch FaultOf(row) {
			case FaultMissingPrice:
				price = ""
			case FaultPriceNotNumber:
				price = "abc"
			case FaultPriceDecimals:
				price = "12.345"
			case FaultNegativeStock:
				stock = "-5"
			case FaultBadCurrency:
				currency = "RMB"
			case FaultBadStatus:
				status = "deleted"
			case FaultDuplicateSKU:
				sku = SKU(row - 1)
			case FaultBadURL:
				images = "not a url|ftp://img.example.com/p/1.jpg"
			case FaultEmptyName:
				name = ""
			}
		}
		cells = [10]string{sku, name, category, brand, price, currency, stock, status, desc, images}
		for i, c := range cells {
			if i > 0 {
				bw.WriteByte(',')
			}
			writeCell(bw, c)
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// heavyDescription is a heavy row's description: HeavyDescription
// characters of Chinese product copy with commas and a newline (a quoted
// cell).
func heavyDescription(row int64) string {
	const copy = "轻便耐用，做工精细，一年质保，七天无理由退换。"
	var b strings.Builder
	n := 0
	for i := 0; n < HeavyDescription; i++ {
		part := fmt.Sprintf("%s第%d款第%d段；", copy, row%1000, i)
		if i == 3 {
			part += "\n"
		}
		for _, r := range part {
			if n == HeavyDescription {
				break
			}
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}

// heavyImages is a heavy row's image list: HeavyImages URLs.
func heavyImages(row int64) string {
	var b strings.Builder
	for i := range HeavyImages {
		if i > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "https://img.example.com/p/%08d/detail-%02d.jpg", row, i+1)
	}
	return b.String()
}

// writeCell writes one CSV cell, quoted when it must be.
func writeCell(w *bufio.Writer, c string) {
	if !strings.ContainsAny(c, ",\"\r\n") && !strings.HasPrefix(c, " ") {
		w.WriteString(c)
		return
	}
	w.WriteByte('"')
	w.WriteString(strings.ReplaceAll(c, `"`, `""`))
	w.WriteByte('"')
}
