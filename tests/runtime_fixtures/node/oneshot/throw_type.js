const obj = undefined;
console.log(obj.property);
