; Items Quarry chunks in C (captures as in rust.scm). Function definitions are chunks;
; prototypes in headers stay in module chunks (the graph still records them).

(function_definition declarator: (function_declarator declarator: (identifier) @name)) @item.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @item.function
(function_definition declarator: (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))) @item.function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @item.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @item.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @item.enum
(type_definition type: (struct_specifier body: (field_declaration_list)) declarator: (type_identifier) @name) @item.struct
(type_definition type: (enum_specifier body: (enumerator_list)) declarator: (type_identifier) @name) @item.enum
(preproc_function_def name: (identifier) @name) @item.macro
