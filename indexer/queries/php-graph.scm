; The code graph of PHP (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last).

; --- definitions
(function_definition name: (name) @def.function)
(method_declaration name: (name) @def.function)
(class_declaration name: (name) @def.class)
(interface_declaration name: (name) @def.trait)
(trait_declaration name: (name) @def.trait)
(enum_declaration name: (name) @def.type)
(const_element (name) @def.constant)
(property_element (variable_name (name) @def.field))
(property_element (variable_name) @skip)
(enum_case name: (name) @def.variant)

; --- imports
(namespace_use_declaration) @import.scope
(namespace_definition) @import.scope
(namespace_use_clause (qualified_name) @import.path alias: (name) @import.alias)

; --- calls
(function_call_expression function: (name) @ref.call)
(function_call_expression function: (qualified_name (name) @ref.call))
(member_call_expression object: (_) @qualifier name: (name) @ref.method)
(nullsafe_member_call_expression object: (_) @qualifier name: (name) @ref.method)
(scoped_call_expression scope: (_) @qualifier name: (name) @ref.method)
(object_creation_expression (name) @ref.call)
(object_creation_expression (qualified_name (name) @ref.call))

; --- members, names
(member_access_expression object: (_) @qualifier name: (name) @ref.field)
(class_constant_access_expression (_) @qualifier (name) @ref.path)
(named_type (name) @ref.type)
(base_clause (name) @ref.type)
(class_interface_clause (name) @ref.type)
; A variable is one site named with its `$` (`$path`), so it is never taken for a use of
; a function, method or property `path`; its inner name is part of it.
(variable_name (name) @skip)
((variable_name) @ref.name (#not-eq? @ref.name "$this"))
((name) @ref.name (#not-eq? @ref.name "this"))
