throw 'a thrown string';
