; Items Quarry chunks in Python. Each pattern captures the item as @item.<kind> and its name
; as @name. Classes become outlines; their methods become chunks too. Decorators belong to
; the item they decorate (see `wrapper_kinds` in src/lang/table.rs).

(function_definition name: (identifier) @name) @item.function
(class_definition name: (identifier) @name) @item.class
