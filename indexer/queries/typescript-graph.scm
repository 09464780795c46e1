; The code graph of TypeScript and TSX (captures as in rust-graph.scm; the first pattern
; that captures a node wins, so the catch-alls come last).

; --- definitions
(function_declaration name: (identifier) @def.function)
(generator_function_declaration name: (identifier) @def.function)
(function_signature name: (identifier) @def.function)
(variable_declarator name: (identifier) @def.function value: [(arrow_function) (function_expression)])
(method_definition name: (property_identifier) @def.function)
(method_signature name: (property_identifier) @def.function)
(abstract_method_signature name: (property_identifier) @def.function)
(public_field_definition name: (property_identifier) @def.function value: [(arrow_function) (function_expression)])
(pair key: (property_identifier) @def.function value: [(arrow_function) (function_expression)])
(class_declaration name: (type_identifier) @def.class)
(abstract_class_declaration name: (type_identifier) @def.class)
(interface_declaration name: (type_identifier) @def.trait)
(type_alias_declaration name: (type_identifier) @def.type)
(enum_declaration name: (identifier) @def.type)
(internal_module name: (identifier) @def.module)
(program (lexical_declaration (variable_declarator name: (identifier) @def.constant)))
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @def.constant))))
(public_field_definition name: (property_identifier) @def.field)
(property_signature name: (property_identifier) @def.field)
(enum_body (property_identifier) @def.variant)

; --- imports
(import_statement) @import.scope
(import_specifier name: (identifier) @import.path alias: (identifier) @import.alias)

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (member_expression object: (_) @qualifier property: (property_identifier) @ref.method))
(new_expression constructor: (identifier) @ref.call)
(new_expression constructor: (member_expression object: (_) @qualifier property: (property_identifier) @ref.call))
(decorator (identifier) @ref.call)
(decorator (call_expression function: (identifier) @ref.call))

; --- members, types, names
(member_expression object: (_) @qualifier property: (property_identifier) @ref.field)
(nested_type_identifier module: (_) @qualifier name: (type_identifier) @ref.type)
(type_identifier) @ref.type
(property_identifier) @ref.field
(shorthand_property_identifier) @ref.field
(shorthand_property_identifier_pattern) @ref.field
(identifier) @ref.name
