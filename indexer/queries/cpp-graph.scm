; The code graph of C++ (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last). Declarations in headers are definitions too.

; --- definitions
(function_declarator declarator: (identifier) @def.function)
(function_declarator declarator: (field_identifier) @def.function)
(function_declarator declarator: (qualified_identifier name: (identifier) @def.function))
(function_declarator declarator: (destructor_name (identifier) @def.function))
(preproc_function_def name: (identifier) @def.macro)
(preproc_def name: (identifier) @def.constant)
(class_specifier name: (type_identifier) @def.class)
(struct_specifier name: (type_identifier) @def.class body: (_))
(union_specifier name: (type_identifier) @def.type body: (_))
(enum_specifier name: (type_identifier) @def.type body: (_))
(type_definition declarator: (type_identifier) @def.type)
(alias_declaration name: (type_identifier) @def.type)
(namespace_definition name: (namespace_identifier) @def.module)
(enumerator name: (identifier) @def.variant)
(field_declaration declarator: (field_identifier) @def.field)

; --- imports
(preproc_include) @import.scope
(using_declaration) @import.scope

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (qualified_identifier scope: (_) @qualifier name: (identifier) @ref.call))
(call_expression function: (field_expression argument: (_) @qualifier field: (field_identifier) @ref.method))
(call_expression function: (template_function name: (identifier) @ref.call))

; --- scopes, fields, types, names
(qualified_identifier scope: (_) @qualifier name: (identifier) @ref.path)
(qualified_identifier scope: (_) @qualifier name: (type_identifier) @ref.type)
(field_expression argument: (_) @qualifier field: (field_identifier) @ref.field)
(type_identifier) @ref.type
(namespace_identifier) @ref.path
(field_identifier) @ref.field
(identifier) @ref.name
