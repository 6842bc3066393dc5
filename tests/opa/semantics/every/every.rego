# `every` and `some … in` whose body looks up a rule or data document by the loop's key
# or value (regorus patch 0009: the RVM took `max[k]` in an `every` body for a loop over
# `max`, so the quantifier held when any entry fit). Compared rule by rule with OPA by
# tests/opa/semantics.py.
package semantics.every

max := {"cpu": 4, "memory": 8}

within_rule_by_key if {
	every k, v in input.limits {
		v <= max[k]
	}
}

within_data_by_key if {
	every k, v in input.limits {
		v <= data.limits[k]
	}
}

within_input_by_key if {
	every k, v in input.limits {
		v <= input.max[k]
	}
}

within_via_local if {
	every k, v in input.limits {
		m := max[k]
		v <= m
	}
}

all_known_by_value if {
	every r in input.roles {
		data.roles[r]
	}
}

none_blocked_by_value if {
	every r in input.roles {
		not data.blocked[r]
	}
}

nested_every if {
	every k, v in input.limits {
		every r in input.roles {
			data.grants[r][k] >= v
		}
	}
}

some_over_limit contains k if {
	some k, v in input.limits
	v > max[k]
}

known_roles := [r | some r in input.roles; data.roles[r]]
