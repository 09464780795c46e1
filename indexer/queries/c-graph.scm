; The code graph of C (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last). Prototypes are definitions too: a header
; declares what its source file defines.

; --- definitions
(function_declarator declarator: (identifier) @def.function)
(preproc_function_def name: (identifier) @def.macro)
(preproc_def name: (identifier) @def.constant)
(struct_specifier name: (type_identifier) @def.type body: (_))
(union_specifier name: (type_identifier) @def.type body: (_))
(enum_specifier name: (type_identifier) @def.type body: (_))
(type_definition declarator: (type_identifier) @def.type)
(enumerator name: (identifier) @def.variant)
(field_declaration declarator: (field_identifier) @def.field)
(field_declaration declarator: (pointer_declarator declarator: (field_identifier) @def.field))
(translation_unit (declaration declarator: (init_declarator declarator: (identifier) @def.constant)))

; --- imports
(preproc_include) @import.scope

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (field_expression argument: (_) @qualifier field: (field_identifier) @ref.method))

; --- fields, types, names
(field_expression argument: (_) @qualifier field: (field_identifier) @ref.field)
(type_identifier) @ref.type
(field_identifier) @ref.field
(identifier) @ref.name
