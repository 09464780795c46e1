; The code graph of C# (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last).

; --- definitions
(method_declaration name: (identifier) @def.function)
(constructor_declaration name: (identifier) @def.function)
(local_function_statement name: (identifier) @def.function)
(class_declaration name: (identifier) @def.class)
(record_declaration name: (identifier) @def.class)
(struct_declaration name: (identifier) @def.type)
(interface_declaration name: (identifier) @def.trait)
(enum_declaration name: (identifier) @def.type)
(delegate_declaration name: (identifier) @def.type)
(namespace_declaration name: (identifier) @def.module)
(property_declaration name: (identifier) @def.field)
(field_declaration (variable_declaration (variable_declarator name: (identifier) @def.field)))
(enum_member_declaration name: (identifier) @def.variant)

; --- imports
(using_directive) @import.scope

; --- calls
(invocation_expression function: (identifier) @ref.call)
(invocation_expression function: (member_access_expression expression: (_) @qualifier name: (identifier) @ref.method))
(invocation_expression function: (generic_name (identifier) @ref.call))
(object_creation_expression type: (identifier) @ref.call)
(attribute name: (identifier) @ref.type)

; --- members, names
(member_access_expression expression: (_) @qualifier name: (identifier) @ref.field)
(qualified_name qualifier: (_) @qualifier name: (identifier) @ref.path)
(identifier) @ref.name
