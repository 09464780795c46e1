; Items Quarry chunks in C++ (captures as in rust.scm). Namespaces and classes are
; containers; `Type::method` defined outside its class keeps its qualified name.
; Templates belong to the item they wrap (`wrapper_kinds`).

(function_definition declarator: (function_declarator declarator: (_) @name)) @item.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (_) @name))) @item.function
(function_definition declarator: (reference_declarator (function_declarator declarator: (_) @name))) @item.function
(class_specifier name: (_) @name body: (field_declaration_list)) @item.class
(struct_specifier name: (_) @name body: (field_declaration_list)) @item.class
(union_specifier name: (_) @name body: (field_declaration_list)) @item.struct
(enum_specifier name: (_) @name body: (enumerator_list)) @item.enum
(namespace_definition name: (_) @name body: (declaration_list)) @item.module
(preproc_function_def name: (identifier) @name) @item.macro
