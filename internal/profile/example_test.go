package profile_test

import (
	"fmt"

	"github.com/catalog-import/catalog-import/internal/profile"
)

// A profile only lists what differs from the default profile; the header is
// resolved once, then each row is validated into a product or one error.
func ExampleValidator_Validate() {
	p, err := profile.Parse([]byte(`
name: acme-supplier
banned_categories: [tobacco]
fields:
  sku:   {columns: [item_code]}
  price: {columns: [unit_price]}
`))
	if err != nil {
		panic(err)
	}
	v, _ := p.Compile()
	cols, err := v.Header([]string{"item_code", "名称", "类目", "unit_price", "Notes"})
	if err != nil {
		panic(err)
	}
	fmt.Println(cols.Mapping()["unit_price"], cols.Unmapped())

	prod, err := v.Validate(cols, []string{"A-1", "茶杯", "Kitchen", "12.5", "fragile"})
	fmt.Println(prod.SKU, prod.Name, prod.Price, prod.Currency, prod.Status, err)

	_, err = v.Validate(cols, []string{"A-2", "烟斗", "Tobacco", "1,5", ""})
	fmt.Println(err)
	// Output:
	// price [Notes]
	// A-1 茶杯 12.50 CNY active <nil>
	// InvalidNumber: price: price "1,5" is not a number; also: category: BannedCategory
}
