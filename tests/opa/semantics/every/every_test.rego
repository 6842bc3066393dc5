# The answers of OPA v1.20.2, which `airlock policy test` must reproduce.
package semantics.every

test_every_looks_up_the_current_key if {
	within_rule_by_key with input as {"limits": {"cpu": 2, "memory": 8}}
	not within_rule_by_key with input as {"limits": {"cpu": 8, "memory": 1}}
	not within_rule_by_key with input as {"limits": {"gpu": 1}}
	not within_via_local with input as {"limits": {"cpu": 8, "memory": 1}}
}

test_every_looks_up_the_current_value if {
	all_known_by_value with input as {"roles": ["reader", "writer"]}
	not all_known_by_value with input as {"roles": ["reader", "admin"]}
	not none_blocked_by_value with input as {"roles": ["reader", "root"]}
}
