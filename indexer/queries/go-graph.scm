; The code graph of Go (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last).

; --- definitions
(package_clause (package_identifier) @def.module)
(function_declaration name: (identifier) @def.function)
(method_declaration name: (field_identifier) @def.function)
(method_elem name: (field_identifier) @def.function)
(type_spec name: (type_identifier) @def.trait type: (interface_type))
(type_spec name: (type_identifier) @def.type)
(type_alias name: (type_identifier) @def.type)
(source_file (const_declaration (const_spec name: (identifier) @def.constant)))
(source_file (var_declaration (var_spec name: (identifier) @def.constant)))
(field_declaration name: (field_identifier) @def.field)

; --- imports
(import_declaration) @import.scope
(import_spec name: (package_identifier) @import.alias path: (_) @import.path)

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (selector_expression operand: (_) @qualifier field: (field_identifier) @ref.method))

; --- selectors, types, names
(qualified_type package: (package_identifier) @qualifier name: (type_identifier) @ref.type)
(selector_expression operand: (_) @qualifier field: (field_identifier) @ref.field)
(type_identifier) @ref.type
(field_identifier) @ref.field
(package_identifier) @ref.path
(identifier) @ref.name
