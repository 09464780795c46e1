; The code graph of JavaScript and JSX (captures as in rust-graph.scm; the first pattern
; that captures a node wins, so the catch-alls come last).

; --- definitions
(function_declaration name: (identifier) @def.function)
(generator_function_declaration name: (identifier) @def.function)
(variable_declarator name: (identifier) @def.function value: [(arrow_function) (function_expression)])
(assignment_expression left: (member_expression property: (property_identifier) @def.function) right: [(arrow_function) (function_expression)])
(method_definition name: (property_identifier) @def.function)
(field_definition property: (property_identifier) @def.function value: [(arrow_function) (function_expression)])
(pair key: (property_identifier) @def.function value: [(arrow_function) (function_expression)])
(class_declaration name: (identifier) @def.class)
(program (lexical_declaration (variable_declarator name: (identifier) @def.constant)))
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @def.constant))))
(field_definition property: (property_identifier) @def.field)

; --- imports
(import_statement) @import.scope
(import_specifier name: (identifier) @import.path alias: (identifier) @import.alias)

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (member_expression object: (_) @qualifier property: (property_identifier) @ref.method))
(new_expression constructor: (identifier) @ref.call)
(new_expression constructor: (member_expression object: (_) @qualifier property: (property_identifier) @ref.call))
(jsx_opening_element name: (identifier) @ref.call)
(jsx_self_closing_element name: (identifier) @ref.call)

; --- members and names
(member_expression object: (_) @qualifier property: (property_identifier) @ref.field)
(property_identifier) @ref.field
(shorthand_property_identifier) @ref.field
(shorthand_property_identifier_pattern) @ref.field
(identifier) @ref.name
